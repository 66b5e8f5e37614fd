//! The data key in the Secret Service (gnome-keyring, KWallet, KeePassXC) over D-Bus, through
//! the `keyring` crate.
//!
//! # Persistence
//! The key lives in the user's login keyring on disk, encrypted by the keyring's password: it
//! **survives reboots and logouts**. It can be read only while the keyring is unlocked (normally
//! from login until logout of the desktop session). Without a session bus (SSH, WSL, CI) the
//! Secret Service is unreachable; `auto` then uses the kernel keyring.
//!
//! Every call runs with a timeout: a locked keyring with a display can wait forever on an unlock
//! prompt nobody sees.

use std::sync::mpsc;
use std::time::Duration;

use crate::secret::DataKey;
use crate::{Error, Result};

const SERVICE: &str = "tokentray";
const BACKEND: &str = "secret-service";
const TIMEOUT: Duration = Duration::from_secs(10);

/// One data key entry in the Secret Service.
#[derive(Debug, Clone)]
pub struct SecretServiceKey {
    user: String,
}

impl SecretServiceKey {
    /// The entry for the key named `id` (the key id a cache file's header records; see
    /// [`super::key_id`]).
    pub fn new(id: &str) -> Self {
        Self {
            user: format!("cache-key:{id}"),
        }
    }

    /// `Ok` if the Secret Service answers; otherwise why not.
    pub fn probe(&self) -> std::result::Result<(), String> {
        self.get().map(drop).map_err(|e| match e {
            Error::KeyStore { reason, .. } => reason,
            other => other.to_string(),
        })
    }

    /// The key, `None` if there is none.
    ///
    /// # Errors
    /// [`Error::KeyStore`] if the service fails, times out, or holds a malformed key.
    pub fn get(&self) -> Result<Option<DataKey>> {
        let user = self.user.clone();
        let bytes = with_timeout(move || {
            let entry = keyring::Entry::new(SERVICE, &user)?;
            match entry.get_secret() {
                Ok(bytes) => Ok(Some(zeroize::Zeroizing::new(bytes))),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        match bytes {
            None => Ok(None),
            Some(b) => DataKey::from_slice(&b)
                .map(Some)
                .ok_or_else(|| Error::KeyStore {
                    backend: BACKEND,
                    reason: format!(
                        "the entry \"{SERVICE}\"/\"{}\" does not hold a 256-bit key; delete it \
                     (e.g. with seahorse) and sign in again",
                        self.user
                    ),
                }),
        }
    }

    /// Stores `key`, replacing any previous one.
    ///
    /// # Errors
    /// [`Error::KeyStore`].
    pub fn put(&self, key: &DataKey) -> Result<()> {
        let user = self.user.clone();
        let key = key.clone();
        with_timeout(move || keyring::Entry::new(SERVICE, &user)?.set_secret(key.expose()))
    }
}

fn with_timeout<T: Send + 'static>(
    f: impl FnOnce() -> keyring::Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(keyring::Error::NoDefaultStore)) => Err(Error::KeyStore {
            backend: BACKEND,
            reason: "no Secret Service on the session bus (no D-Bus session, or no keyring \
                     daemon running)"
                .into(),
        }),
        Ok(Err(e)) => Err(Error::KeyStore {
            backend: BACKEND,
            reason: e.to_string(),
        }),
        Err(_) => Err(Error::KeyStore {
            backend: BACKEND,
            reason: format!(
                "no answer within {}s (is the keyring locked? unlock it, e.g. by logging in \
                 to the desktop)",
                TIMEOUT.as_secs()
            ),
        }),
    }
}
