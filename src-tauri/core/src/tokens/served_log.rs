//! What the endpoint served since this instance started: a count, the last client of each
//! token, and the activity (the last [`ACTIVITY_KEPT`] tokens served), for the window and
//! `tokentray activity`. Nothing secret: who, which account and resource, by which route, when.

use std::collections::VecDeque;
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

/// Activity entries kept, newest first; older ones are forgotten.
pub const ACTIVITY_KEPT: usize = 300;

/// One line of the activity: tokens the endpoint served, one after another, to one client for
/// one account and scopes by one route (a tool asking in a loop is one line with a count).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Served {
    /// When the last of them was served, epoch seconds.
    pub at: i64,
    /// When the first of them was served, epoch seconds.
    pub since: i64,
    /// How many were served.
    pub count: u64,
    /// The endpoint's route (`/msi/token`, `/v1/token`).
    pub route: String,
    /// The account's username.
    pub account: String,
    /// The granted scopes, space-separated.
    pub scopes: String,
    /// The client process, `pid N (exe)`, or `unknown`.
    pub client: String,
}

impl Served {
    /// Whether `needle` (case-insensitive) is in its client, account, scopes or route.
    pub fn matches(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        [&self.client, &self.account, &self.scopes, &self.route]
            .iter()
            .any(|field| field.to_lowercase().contains(&needle))
    }
}

/// Of one account's tokens: scopes -> the client last served and when the UI was last told.
type LastServed = foldhash::HashMap<String, (String, Instant)>;

/// Served tokens: a counter (one atomic add on the request path), username -> scopes -> the
/// client last served and when the UI was last told, and the activity. Looked up by borrowed
/// strings: a token served again to the same client allocates nothing.
#[derive(Debug, Default)]
pub(super) struct ServedLog {
    count: AtomicU64,
    last: Mutex<foldhash::HashMap<String, LastServed>>,
    activity: Mutex<VecDeque<Served>>,
}

impl Tokens {
    /// Counts a token the endpoint served (on the request path: one atomic add).
    pub fn count_served(&self) {
        self.served.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that the endpoint served `account`'s token for `scopes` to `client` by `route`
    /// (in the activity, at [`Tokens::now`]), and tells the UI, unless it told the UI the same
    /// within [`RETELL`].
    pub fn served_to(&self, route: &str, account: &str, scopes: &str, client: &str) {
        self.record_activity(route, account, scopes, client);
        let now = Instant::now();
        {
            let mut last = lock(&self.served.last);
            match last
                .get_mut(account)
                .and_then(|by_scopes| by_scopes.get_mut(scopes))
            {
                Some((known, told)) if known == client && now.duration_since(*told) < RETELL => {
                    return;
                }
                Some((known, told)) => {
                    client.clone_into(known);
                    *told = now;
                }
                None => {
                    let remembered: usize = last.values().map(|by_scopes| by_scopes.len()).sum();
                    if remembered >= MAX_REMEMBERED {
                        last.clear();
                    }
                    last.entry(account.to_string())
                        .or_default()
                        .insert(scopes.to_string(), (client.to_string(), now));
                }
            }
        }
        self.emit(Event::TokenServed {
            account: account.to_string(),
            scopes: scopes.to_string(),
            client: client.to_string(),
        });
    }

    fn record_activity(&self, route: &str, account: &str, scopes: &str, client: &str) {
        let at = self.now();
        let mut activity = lock(&self.served.activity);
        if let Some(newest) = activity.front_mut()
            && newest.route == route
            && newest.account == account
            && newest.scopes == scopes
            && newest.client == client
        {
            newest.count += 1;
            newest.at = at;
            return;
        }
        if activity.len() >= ACTIVITY_KEPT {
            activity.pop_back();
        }
        activity.push_front(Served {
            at,
            since: at,
            count: 1,
            route: route.into(),
            account: account.into(),
            scopes: scopes.into(),
            client: client.into(),
        });
    }

    /// The activity since this instance started, newest first (at most [`ACTIVITY_KEPT`]).
    pub fn activity(&self) -> Vec<Served> {
        lock(&self.served.activity).iter().cloned().collect()
    }

    /// The client the endpoint last served `account`'s (username) token for `scopes` (the
    /// entry's target) to, since this instance started.
    pub fn last_served_to(&self, account: &str, scopes: &str) -> Option<String> {
        lock(&self.served.last)
            .get(account)?
            .get(scopes)
            .map(|(client, _)| client.clone())
    }

    /// Tokens the endpoint served since this instance started.
    pub fn requests_served(&self) -> u64 {
        self.served.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
