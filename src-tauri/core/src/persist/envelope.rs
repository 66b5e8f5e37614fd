//! The encrypted cache file format.
//!
//! ```text
//! 0..7    magic "TOKTRAY"
//! 7       format version (1)
//! 8       key store holding the data key (1 secret-service, 2 keyutils, 3 keychain)
//! 9       algorithm (1 = AES-256-GCM)
//! 10..18  key check: first 8 bytes of SHA-256("tokentray key check" || key)
//! 18..30  random 96-bit nonce (fresh for every save)
//! 30..    ciphertext || 16-byte tag; bytes 0..18 are authenticated as associated data
//! ```
//! The key check tells "wrong key" from "tampered file" without revealing the key.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::secret::DataKey;

const MAGIC: &[u8; 7] = b"TOKTRAY";
const VERSION: u8 = 1;
const ALG_AES_256_GCM: u8 = 1;
const HEADER: usize = 18;
const NONCE: usize = 12;
const TAG: usize = 16;

/// Why a file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a header plus tag.
    Truncated,
    /// No tokentray magic.
    NotOurs,
    /// A format version or algorithm this build does not know.
    Unsupported,
    /// The key check does not match the key.
    WrongKey,
    /// Authentication failed: the file was modified or damaged.
    Tampered,
}

impl OpenError {
    /// In words, for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Truncated => "the file is truncated",
            Self::NotOurs => "not a tokentray cache file",
            Self::Unsupported => "written by a newer tokentray (unknown format version)",
            Self::WrongKey => "encrypted with a different key than the one in the key store",
            Self::Tampered => "the file was modified or damaged (authentication failed)",
        }
    }
}

/// The key store tag in a file header, if the file is ours.
pub fn key_store_tag(bytes: &[u8]) -> Option<u8> {
    (bytes.len() >= HEADER && &bytes[..7] == MAGIC).then(|| bytes[8])
}

fn key_check(key: &DataKey) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(b"tokentray key check")
        .chain_update(key.expose())
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// Encrypts `plaintext` under `key`, recording which key store holds the key.
///
/// # Errors
/// [`crate::Error::Randomness`] if the OS has no randomness for the nonce.
pub fn seal(key: &DataKey, store_tag: u8, plaintext: &[u8]) -> crate::Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE];
    crate::secret::random_bytes(&mut nonce)?;
    let failed = |_| crate::Error::KeyStore {
        backend: "aes-gcm",
        reason: "encryption failed".into(),
    };
    let mut out = Vec::with_capacity(HEADER + NONCE + plaintext.len() + TAG);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, store_tag, ALG_AES_256_GCM]);
    out.extend_from_slice(&key_check(key));
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let (header, body) = out.split_at_mut(HEADER + NONCE);
    let tag = cipher(key)
        .map_err(failed)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header[..HEADER]),
            body,
        )
        .map_err(failed)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts a file written by [`seal`].
///
/// # Errors
/// The [`OpenError`] that says what is wrong with the file.
pub fn open(key: &DataKey, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if bytes.len() >= MAGIC.len() && &bytes[..7] != MAGIC {
        return Err(OpenError::NotOurs);
    }
    if bytes.len() < HEADER + NONCE + TAG {
        return Err(OpenError::Truncated);
    }
    if bytes[7] != VERSION || bytes[9] != ALG_AES_256_GCM {
        return Err(OpenError::Unsupported);
    }
    if bytes[10..18] != key_check(key) {
        return Err(OpenError::WrongKey);
    }
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&bytes[HEADER..HEADER + NONCE]);
    let mut body = Zeroizing::new(bytes[HEADER + NONCE..].to_vec());
    let len = cipher(key)
        .map_err(|_| OpenError::Tampered)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&bytes[..HEADER]),
            &mut body,
        )
        .map_err(|_| OpenError::Tampered)?
        .len();
    body.truncate(len);
    Ok(body)
}

fn cipher(key: &DataKey) -> Result<LessSafeKey, ring::error::Unspecified> {
    UnboundKey::new(&AES_256_GCM, key.expose()).map(LessSafeKey::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_failure_is_told_apart() {
        let key = DataKey::generate().unwrap();
        let sealed = seal(&key, 2, b"{\"AccessToken\":{}}").unwrap();
        assert_eq!(key_store_tag(&sealed), Some(2));
        assert_eq!(&open(&key, &sealed).unwrap()[..], b"{\"AccessToken\":{}}");
        // nonces are fresh
        assert_ne!(sealed, seal(&key, 2, b"{\"AccessToken\":{}}").unwrap());

        let other = DataKey::generate().unwrap();
        assert_eq!(open(&other, &sealed).unwrap_err(), OpenError::WrongKey);

        for i in [HEADER + NONCE, sealed.len() - 1, 20, 8] {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x01;
            let err = open(&key, &flipped).unwrap_err();
            assert!(
                matches!(err, OpenError::Tampered | OpenError::Unsupported),
                "byte {i}: {err:?}"
            );
        }
        assert_eq!(
            open(&key, &sealed[..sealed.len() - 1]).unwrap_err(),
            OpenError::Tampered
        );
        assert_eq!(open(&key, &sealed[..20]).unwrap_err(), OpenError::Truncated);
        assert_eq!(
            open(&key, b"{\"AccessToken\":{}}").unwrap_err(),
            OpenError::NotOurs
        );
    }
}
