//! Redacted, zeroizing newtypes for everything secret: tokens and keys.
//!
//! Guarantees: `Debug` prints `[redacted]`, there is no `Display`, the memory is zeroed on drop,
//! and the only way to the bytes is an explicit `.expose()` call, which is easy to grep for.

use std::fmt;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// A token (access, refresh or id token) or other secret string.
///
/// Clones share one copy of the bytes (a token served from the cache is not copied per
/// request), which is zeroed when the last clone is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    /// Wraps a secret string; the caller should not keep other copies.
    pub fn new(value: String) -> Self {
        Self(Arc::new(Zeroizing::new(value)))
    }

    /// The secret itself.
    ///
    /// # Security
    /// Never log, print or put the result in an error message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this secret's bytes, compared in constant time (the length
    /// aside).
    pub fn is(&self, candidate: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.len() == candidate.len() && bool::from(self.0.as_bytes().ct_eq(candidate))
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

/// Bytes that hold a secret (a token answer's body), zeroed when dropped, all of its capacity.
///
/// On Linux with `explicit_bzero`, which the compiler may not remove and which runs at memset
/// speed; elsewhere with `zeroize`'s volatile writes, a byte at a time. A 1.6 KB answer took
/// 2,000 instructions to zero byte by byte, a twentieth of a cached-token request.
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes `bytes`; the caller should not keep other copies.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        #[allow(unsafe_code)]
        // SAFETY: the pointer and capacity are the vector's own allocation, which stays alive and
        // unborrowed for the call; writing zeros to all of it, initialised or not, is allowed.
        unsafe {
            libc::explicit_bzero(self.0.as_mut_ptr().cast(), self.0.capacity());
        }
        #[cfg(not(target_os = "linux"))]
        self.0.zeroize();
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
    /// [`crate::Error::Randomness`] if the OS has no randomness to give.
    pub fn generate() -> crate::Result<Self> {
        let mut key = [0u8; 32];
        random_bytes(&mut key)?;
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

/// Fills `buf` from the OS CSPRNG: the one place tokentray asks for randomness.
///
/// # Errors
/// [`crate::Error::Randomness`] if the OS has none to give.
pub fn random_bytes(buf: &mut [u8]) -> crate::Result<()> {
    getrandom::fill(buf).map_err(|e| crate::Error::Randomness {
        reason: e.to_string(),
    })
}

/// `n` random bytes, base64url without padding (secrets, PKCE verifiers, `state`, `nonce`).
///
/// # Errors
/// [`crate::Error::Randomness`].
pub fn random_token(n: usize) -> crate::Result<String> {
    use base64::Engine as _;
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    random_bytes(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*bytes))
}

/// Lowercase hex of `bytes`: for ids and digests (key ids, executable hashes, request ids),
/// never for a secret, since the string is not zeroized.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]])
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

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
