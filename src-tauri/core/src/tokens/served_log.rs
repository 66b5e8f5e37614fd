//! What the endpoint served since this instance started: a count, and the last client of each
//! token, for the window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Event, Tokens};
use crate::sync::lock;

/// Most (username, scopes) pairs remembered; past this the memory starts over.
const MAX_REMEMBERED: usize = 1024;
/// A token served again to the same client is told to the UI at most this often: a tool that
/// asks thousands of times a second costs one event a second, not one per request.
const RETELL: Duration = Duration::from_secs(1);

/// Served tokens: a counter (one atomic add on the request path) and (username, scopes) -> the
/// client last served, and when the UI was last told.
#[derive(Debug, Default)]
pub(super) struct ServedLog {
    count: AtomicU64,
    last: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl Tokens {
    /// Counts a token the endpoint served (on the request path: one atomic add).
    pub fn count_served(&self) {
        self.served.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that the endpoint served `account`'s token for `scopes` to `client`, and tells
    /// the UI, unless it told the UI the same within [`RETELL`].
    pub fn served_to(&self, account: String, scopes: String, client: String) {
        let now = Instant::now();
        let key = (account, scopes);
        {
            let mut last = lock(&self.served.last);
            match last.get_mut(&key) {
                Some((known, told)) if *known == client && now.duration_since(*told) < RETELL => {
                    return;
                }
                Some(entry) => *entry = (client.clone(), now),
                None => {
                    if last.len() >= MAX_REMEMBERED {
                        last.clear();
                    }
                    last.insert(key.clone(), (client.clone(), now));
                }
            }
        }
        let (account, scopes) = key;
        self.emit(Event::TokenServed {
            account,
            scopes,
            client,
        });
    }

    /// The client the endpoint last served `account`'s (username) token for `scopes` (the
    /// entry's target) to, since this instance started.
    pub fn last_served_to(&self, account: &str, scopes: &str) -> Option<String> {
        lock(&self.served.last)
            .get(&(account.to_string(), scopes.to_string()))
            .map(|(client, _)| client.clone())
    }

    /// Tokens the endpoint served since this instance started.
    pub fn requests_served(&self) -> u64 {
        self.served.count.load(Ordering::Relaxed)
    }
}
