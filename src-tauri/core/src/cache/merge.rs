//! Merging another cache into this one (`cache import`), and dropping expired access tokens.

use super::{
    TokenCache, access_token_key, account_key, app_metadata_key, epoch, id_token_key,
    refresh_token_key,
};

impl TokenCache {
    /// Removes access tokens that expired before `now` (MSAL's search does the same).
    pub fn remove_expired(&mut self, now: i64) -> usize {
        self.remove_access_tokens(|at| epoch(&at.expires_on).is_none_or(|e| e < now))
    }

    /// Merges another cache (e.g. Azure CLI's) into this one. Its entries are re-keyed by their
    /// fields with MSAL Python's key makers; on a clash the fresher entry wins (later
    /// `expires_on` for access tokens, later `last_modification_time` for refresh tokens, the
    /// incoming one otherwise). Unknown sections are added if absent. Returns entries taken.
    pub fn merge(&mut self, other: TokenCache) -> usize {
        let mut taken = 0;
        for (_, at) in other.access_tokens {
            let key = access_token_key(&at);
            let fresher = self
                .access_tokens
                .get(&key)
                .is_none_or(|old| epoch(&at.expires_on) > epoch(&old.expires_on));
            if fresher {
                self.put_access_token(at);
                taken += 1;
            }
        }
        for (_, rt) in other.refresh_tokens {
            let key = refresh_token_key(&rt);
            let fresher = self.refresh_tokens.get(&key).is_none_or(|old| {
                epoch(&rt.last_modification_time) >= epoch(&old.last_modification_time)
            });
            if fresher {
                self.refresh_tokens.insert(key, rt);
                taken += 1;
            }
        }
        for (_, t) in other.id_tokens {
            self.id_tokens.insert(id_token_key(&t), t);
            taken += 1;
        }
        for (_, a) in other.accounts {
            self.accounts.insert(account_key(&a), a);
            taken += 1;
        }
        for (_, m) in other.app_metadata {
            let key = app_metadata_key(&m);
            let keep_family = self
                .app_metadata
                .get(&key)
                .and_then(|old| old.family_id.clone());
            let mut m = m;
            if m.family_id.is_none() {
                m.family_id = keep_family;
            }
            self.app_metadata.insert(key, m);
            taken += 1;
        }
        for (name, raw) in other.unknown_sections {
            self.unknown_sections.entry(name).or_insert(raw);
        }
        taken
    }
}
