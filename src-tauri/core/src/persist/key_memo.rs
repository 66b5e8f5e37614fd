//! Data keys read from a key store, remembered for the rest of the process.
//!
//! macOS asks the user to allow each Keychain read by a binary whose signature it has not been
//! told to trust (every development or ad-hoc signed build), so the Keychain backend reads each
//! item at most once per process: the probe at open, the load and the save share that read.
//! A key store answering "no such key" is asked again next time (the key may be created since);
//! a key written is remembered as written.

use std::sync::Mutex;

use crate::Result;
use crate::secret::DataKey;

/// The remembered keys, by item name. The lock is held across a read, so concurrent callers
/// wait for the one read (and the one prompt) instead of each starting their own.
pub(super) struct KeyMemo(Mutex<Vec<(String, DataKey)>>);

impl KeyMemo {
    /// No keys remembered yet.
    pub(super) const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    /// The key `name`: the remembered one, else what `read` answers (remembered if a key).
    pub(super) fn get(
        &self,
        name: &str,
        read: impl FnOnce() -> Result<Option<DataKey>>,
    ) -> Result<Option<DataKey>> {
        let mut keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, key)) = keys.iter().find(|(n, _)| n == name) {
            return Ok(Some(key.clone()));
        }
        let found = read()?;
        if let Some(key) = &found {
            keys.push((name.to_owned(), key.clone()));
        }
        Ok(found)
    }

    /// Stores `key` as `name` with `write`, then remembers it.
    pub(super) fn put(
        &self,
        name: &str,
        key: &DataKey,
        write: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        write()?;
        keys.retain(|(n, _)| n != name);
        keys.push((name.to_owned(), key.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn each_key_is_read_once_and_a_missing_one_is_asked_again() {
        let memo = KeyMemo::new();
        let reads = Cell::new(0);
        let key = DataKey::from_slice(&[7; 32]).unwrap();
        let store = |answer: Option<DataKey>| {
            reads.set(reads.get() + 1);
            Ok(answer)
        };
        assert_eq!(memo.get("a", || store(None)).unwrap(), None);
        assert_eq!(
            memo.get("a", || store(Some(key.clone()))).unwrap(),
            Some(key.clone())
        );
        assert_eq!(
            memo.get("a", || store(None)).unwrap(),
            Some(key.clone()),
            "remembered"
        );
        assert_eq!(reads.get(), 2);

        let other = DataKey::from_slice(&[9; 32]).unwrap();
        memo.put("b", &other, || Ok(())).unwrap();
        assert_eq!(memo.get("b", || store(None)).unwrap(), Some(other.clone()));
        assert_eq!(reads.get(), 2, "a key written is not read back");

        let failed = memo.put("c", &other, || Err(crate::Error::invalid("x", "y")));
        assert!(failed.is_err());
        assert_eq!(
            memo.get("c", || store(None)).unwrap(),
            None,
            "not remembered"
        );
    }
}
