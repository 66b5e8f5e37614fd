//! The cache in memory: one snapshot, replaced whole when the file changes, read without
//! touching the file. A running instance keeps it current from a background task.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Event, Tokens};
use crate::Result;
use crate::cache::{AccountInfo, TokenCache};
use crate::persist::Stamp;

/// A version of the cache and what is derived from it.
pub(super) struct Snapshot {
    pub(super) cache: TokenCache,
    /// `cache.accounts()`, computed once per version: it decodes id tokens.
    pub(super) accounts: Vec<Arc<AccountInfo>>,
    pub(super) stamp: Option<Stamp>,
}

impl Snapshot {
    pub(super) fn new(cache: TokenCache, stamp: Option<Stamp>) -> Self {
        let accounts = cache.accounts().into_iter().map(Arc::new).collect();
        Self {
            cache,
            accounts,
            stamp,
        }
    }
}

/// Runs blocking file and lock work off the async workers where the runtime allows it (a
/// multi-threaded runtime hands the worker's other tasks to another thread meanwhile).
pub(super) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

impl Tokens {
    /// Rereads the file if another process changed it, unless the watcher keeps the snapshot
    /// current (then requests never touch the file or its lock).
    pub(super) fn reload_if_changed(&self) -> Result<()> {
        if self.watched.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.reload().map(drop)
    }

    /// Rereads the file if its stamp changed, that is if another process wrote it (this
    /// process's own writes install their stamp); returns whether it did.
    pub(super) fn reload(&self) -> Result<bool> {
        let current = self.store.stamp();
        let stale = self.snapshot.read().map_or(true, |s| s.stamp != current);
        if !stale {
            return Ok(false);
        }
        let (cache, stamp) = blocking(|| self.store.read_stamped())?;
        self.install(cache, stamp);
        Ok(true)
    }

    /// Replaces the snapshot. The old one is dropped (its secrets zeroed) after the lock is
    /// released, and its memory given back to the system ([`crate::heap::give_back_freed`]),
    /// off the async workers.
    fn install(&self, cache: TokenCache, stamp: Option<Stamp>) {
        let fresh = Snapshot::new(cache, stamp);
        let old = match self.snapshot.write() {
            Ok(mut s) => std::mem::replace(&mut *s, fresh),
            Err(_) => return,
        };
        blocking(move || {
            drop(old);
            crate::heap::give_back_freed();
        });
    }

    pub(super) fn with_cache<T>(&self, f: impl FnOnce(&TokenCache) -> T) -> T {
        self.with_snapshot(|cache, _| f(cache))
    }

    /// The cache and its accounts, as of the last reload.
    pub(super) fn with_snapshot<T>(
        &self,
        f: impl FnOnce(&TokenCache, &[Arc<AccountInfo>]) -> T,
    ) -> T {
        match self.snapshot.read() {
            Ok(s) => f(&s.cache, &s.accounts),
            Err(poisoned) => {
                let s = poisoned.into_inner();
                f(&s.cache, &s.accounts)
            }
        }
    }

    /// Applies a change to the file under the lock and installs the result in memory.
    pub(super) fn update<T>(&self, change: impl FnOnce(&mut TokenCache) -> Result<T>) -> Result<T> {
        let (out, cache, stamp) = blocking(|| self.store.update((self.clock)(), change))?;
        self.install(cache, stamp);
        Ok(out)
    }

    /// Keeps the snapshot current with the file, every `period`, until `shutdown`: another
    /// process's sign-in, switch, sign-out or refresh is seen within `period` and announced as
    /// [`Event::AccountsChanged`], so the window and tray show it. Meanwhile requests are answered from
    /// the snapshot alone, so a lock held by another process never delays them.
    pub async fn watch_for_changes(
        self: Arc<Self>,
        period: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        self.watched.store(true, Ordering::Relaxed);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = &mut shutdown => break,
            }
            let tokens = self.clone();
            match tokio::task::spawn_blocking(move || tokens.reload()).await {
                Ok(Ok(true)) => self.emit(Event::AccountsChanged),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::debug!("watching the cache: {e}"),
                Err(e) => tracing::debug!("watching the cache: {e}"),
            }
        }
        self.watched.store(false, Ordering::Relaxed);
    }
}
