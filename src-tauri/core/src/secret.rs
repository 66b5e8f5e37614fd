//! Redacted, zeroizing newtypes for everything secret: tokens and keys.
//!
//! Guarantees: `Debug` prints `[redacted]`, there is no `Display`, the memory is zeroed on drop,
//! and the only way to the bytes is an explicit `.expose()` call, which is easy to grep for.

use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A token (access, refresh or id token) or other secret string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret string; the caller should not keep other copies.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself.
    ///
    /// # Security
    /// Never log, print or put the result in an error message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// A 256-bit symmetric data key (the cache's encryption key).
#[derive(Clone, PartialEq, Eq, Zeroize)]
#[zeroize(drop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh random key from the OS CSPRNG.
    ///
    /// # Errors
    /// [`crate::Error::KeyStore`] if the OS has no randomness to give.
    pub fn generate() -> crate::Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| crate::Error::KeyStore {
            backend: "os-random",
            reason: format!("no randomness available: {e}"),
        })?;
        Ok(Self(key))
    }

    /// Rebuilds a key from stored bytes; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The key bytes.
    ///
    /// # Security
    /// Never log, print or put the result in an error message.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("eyJhbGciOi.very.secret".into());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret([redacted]))");
        let k = DataKey::generate().unwrap();
        assert_eq!(format!("{k:?}"), "DataKey([redacted])");
    }

    #[test]
    fn keys_are_random_and_32_bytes() {
        let a = DataKey::generate().unwrap();
        let b = DataKey::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert!(DataKey::from_slice(&[0u8; 31]).is_none());
        assert!(DataKey::from_slice(&[0u8; 32]).is_some());
    }
}
