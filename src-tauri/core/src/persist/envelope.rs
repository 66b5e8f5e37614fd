//! The encrypted cache file format.
//!
//! ```text
//! 0..7    magic "TOKTRAY"
//! 7       format version (2; 1 is the format before key ids, still read)
//! 8       key store holding the data key (1 secret-service, 2 keyutils, 3 keychain)
//! 9       algorithm (1 = AES-256-GCM)
//! 10..18  key check: first 8 bytes of SHA-256("tokentray key check" || key)
//! 18..26  key id (version 2 only): the key store entry holding the key is `cache-key:<hex>`
//! then    random 96-bit nonce (fresh for every save), ciphertext || 16-byte tag; the header
//!         (bytes 0..26, 0..18 in version 1) is authenticated as associated data
//! ```
//! The key check tells "wrong key" from "tampered file" without revealing the key. The key id
//! makes the file name its own key: whatever path it is opened through (a symlink, a relative
//! `TOKENTRAY_HOME`, a moved directory), the same key is asked for. Version 1 files carry no id;
//! their key was named after the path they were written through ([`KeyId::of_path`]).

use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::secret::DataKey;

const MAGIC: &[u8; 7] = b"TOKTRAY";
const VERSION: u8 = 2;
const VERSION_WITHOUT_KEY_ID: u8 = 1;
const ALG_AES_256_GCM: u8 = 1;
const HEADER_V1: usize = 18;
const HEADER: usize = 26;
const NONCE: usize = 12;
const TAG: usize = 16;
/// The length of the shortest file of the current format: its first `MIN_LEN` bytes are enough
/// for [`key_ref`] and [`fits`].
pub const MIN_LEN: usize = HEADER + NONCE + TAG;

/// The name of a data key in the key stores: 64 bits, written as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The first 8 bytes of SHA-256 of `path` as text: how version 1 named the key of the cache
    /// file written through `path`, and how a new cache names its key (from its canonical path,
    /// so each cache directory has its own key).
    pub fn of_path(path: &Path) -> Self {
        let digest = Sha256::digest(path.to_string_lossy().as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self(id)
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::secret::hex(&self.0))
    }
}

/// Which key a file says it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// The key named in the header.
    Named(KeyId),
    /// A version 1 file: the key was named after the path the file was written through.
    FromPath,
}

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

/// How many leading bytes of a file [`key_store_tag`] reads.
pub const TAG_HEAD: usize = HEADER_V1;

/// The key store tag in a file header (its first [`TAG_HEAD`] bytes), if the file is ours.
pub fn key_store_tag(bytes: &[u8]) -> Option<u8> {
    (bytes.len() >= HEADER_V1 && &bytes[..7] == MAGIC).then(|| bytes[8])
}

/// The header's length if `bytes` start like a file of ours of a known version.
fn header_len(bytes: &[u8]) -> Result<usize, OpenError> {
    if bytes.len() >= MAGIC.len() && &bytes[..7] != MAGIC {
        return Err(OpenError::NotOurs);
    }
    let header = match bytes.get(7) {
        None => return Err(OpenError::Truncated),
        Some(&VERSION) => HEADER,
        Some(&VERSION_WITHOUT_KEY_ID) => HEADER_V1,
        Some(_) => return Err(OpenError::Unsupported),
    };
    if bytes.len() < header + NONCE + TAG {
        return Err(OpenError::Truncated);
    }
    if bytes[9] != ALG_AES_256_GCM {
        return Err(OpenError::Unsupported);
    }
    Ok(header)
}

/// Which key the file `bytes` needs.
///
/// # Errors
/// The [`OpenError`] that says why it is not a file this build can open (never
/// [`OpenError::WrongKey`] or [`OpenError::Tampered`]: those need the key).
pub fn key_ref(bytes: &[u8]) -> Result<KeyRef, OpenError> {
    Ok(match header_len(bytes)? {
        HEADER => {
            let mut id = [0u8; 8];
            id.copy_from_slice(&bytes[HEADER_V1..HEADER]);
            KeyRef::Named(KeyId(id))
        }
        _ => KeyRef::FromPath,
    })
}

/// Whether `key` is the key the file `bytes` was sealed with (its key check matches).
pub fn fits(key: &DataKey, bytes: &[u8]) -> bool {
    bytes.get(10..18) == Some(&key_check(key)[..])
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

/// A sealed file in its three parts, as [`seal`] leaves them: written one after another, they
/// are the file.
pub struct Sealed {
    /// The header and the nonce.
    head: Vec<u8>,
    /// The ciphertext, in what was the plaintext's buffer.
    body: Zeroizing<Vec<u8>>,
    tag: Tag,
}

impl Sealed {
    /// The parts, in file order.
    pub fn parts(&self) -> [&[u8]; 3] {
        [&self.head, &self.body, self.tag.as_ref()]
    }

    /// The whole file (for tests and the fuzz harness; a save writes the parts).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// Encrypts `plaintext` under `key`, in its own buffer, recording which key store holds the key
/// and its `id` there.
///
/// # Errors
/// [`crate::Error::Randomness`] if the OS has no randomness for the nonce.
pub fn seal(
    key: &DataKey,
    store_tag: u8,
    id: KeyId,
    mut plaintext: Zeroizing<Vec<u8>>,
) -> crate::Result<Sealed> {
    let mut nonce = [0u8; NONCE];
    crate::secret::random_bytes(&mut nonce)?;
    let failed = |_| crate::Error::KeyStore {
        backend: "aes-gcm",
        reason: "encryption failed".into(),
    };
    let mut head = Vec::with_capacity(HEADER + NONCE);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&[VERSION, store_tag, ALG_AES_256_GCM]);
    head.extend_from_slice(&key_check(key));
    head.extend_from_slice(&id.0);
    head.extend_from_slice(&nonce);
    let tag = cipher(key)
        .map_err(failed)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&head[..HEADER]),
            &mut plaintext,
        )
        .map_err(failed)?;
    Ok(Sealed {
        head,
        body: plaintext,
        tag,
    })
}

/// Decrypts a file written by [`seal`] (or by version 1), in place: the plaintext takes over
/// the `sealed` buffer, so the cache is never in memory twice (at 1,000 accounts the file is
/// 25 MB).
///
/// # Errors
/// The [`OpenError`] that says what is wrong with the file.
pub fn open(
    key: &DataKey,
    mut sealed: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let header = header_len(&sealed)?;
    if !fits(key, &sealed) {
        return Err(OpenError::WrongKey);
    }
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&sealed[header..header + NONCE]);
    let aad = sealed[..header].to_vec();
    let len = cipher(key)
        .map_err(|_| OpenError::Tampered)?
        .open_within(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad[..]),
            &mut sealed,
            header + NONCE..,
        )
        .map_err(|_| OpenError::Tampered)?
        .len();
    sealed.truncate(len);
    Ok(sealed)
}

fn cipher(key: &DataKey) -> Result<LessSafeKey, ring::error::Unspecified> {
    UnboundKey::new(&AES_256_GCM, key.expose()).map(LessSafeKey::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_copy(key: &DataKey, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        open(key, Zeroizing::new(bytes.to_vec()))
    }

    const ID: KeyId = KeyId([1, 2, 3, 4, 5, 6, 7, 0xab]);

    /// A file as version 1 wrote it (no key id), for the upgrade tests.
    fn seal_v1(key: &DataKey, store_tag: u8, plaintext: &[u8]) -> Vec<u8> {
        let nonce = [7u8; NONCE];
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[VERSION_WITHOUT_KEY_ID, store_tag, ALG_AES_256_GCM]);
        out.extend_from_slice(&key_check(key));
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        let tag = cipher(key)
            .unwrap()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&out[..HEADER_V1]),
                &mut body,
            )
            .unwrap();
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        out
    }

    #[test]
    fn round_trip_and_every_failure_is_told_apart() {
        let key = DataKey::generate().unwrap();
        let sealed = seal(
            &key,
            2,
            ID,
            Zeroizing::new(b"{\"AccessToken\":{}}".to_vec()),
        )
        .unwrap()
        .to_vec();
        assert_eq!(key_store_tag(&sealed), Some(2));
        assert_eq!(key_ref(&sealed), Ok(KeyRef::Named(ID)));
        assert!(fits(&key, &sealed));
        assert_eq!(
            &open_copy(&key, &sealed).unwrap()[..],
            b"{\"AccessToken\":{}}"
        );
        // nonces are fresh
        assert_ne!(
            sealed,
            seal(
                &key,
                2,
                ID,
                Zeroizing::new(b"{\"AccessToken\":{}}".to_vec())
            )
            .unwrap()
            .to_vec()
        );

        let other = DataKey::generate().unwrap();
        assert!(!fits(&other, &sealed));
        assert_eq!(open_copy(&other, &sealed).unwrap_err(), OpenError::WrongKey);

        // the nonce, the tag, the key id and the store tag are all covered
        for i in [HEADER + NONCE, sealed.len() - 1, 20, HEADER, 8] {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x01;
            let err = open_copy(&key, &flipped).unwrap_err();
            assert!(
                matches!(err, OpenError::Tampered | OpenError::Unsupported),
                "byte {i}: {err:?}"
            );
        }
        assert_eq!(
            open_copy(&key, &sealed[..sealed.len() - 1]).unwrap_err(),
            OpenError::Tampered
        );
        assert_eq!(
            open_copy(&key, &sealed[..20]).unwrap_err(),
            OpenError::Truncated
        );
        assert_eq!(key_ref(&sealed[..20]), Err(OpenError::Truncated));
        assert_eq!(
            open_copy(&key, b"{\"AccessToken\":{}}").unwrap_err(),
            OpenError::NotOurs
        );
        let mut newer = sealed.clone();
        newer[7] = 3;
        assert_eq!(key_ref(&newer), Err(OpenError::Unsupported));
    }

    #[test]
    fn version_1_files_still_open_and_say_their_key_is_named_by_path() {
        let key = DataKey::generate().unwrap();
        let old = seal_v1(&key, 2, b"{\"Account\":{}}");
        assert_eq!(key_ref(&old), Ok(KeyRef::FromPath));
        assert_eq!(key_store_tag(&old), Some(2));
        assert!(fits(&key, &old));
        assert_eq!(&open_copy(&key, &old).unwrap()[..], b"{\"Account\":{}}");
        assert_eq!(
            open_copy(&DataKey::generate().unwrap(), &old).unwrap_err(),
            OpenError::WrongKey
        );
        let mut flipped = old.clone();
        flipped[HEADER_V1 + NONCE] ^= 0x01;
        assert_eq!(open_copy(&key, &flipped).unwrap_err(), OpenError::Tampered);
    }

    #[test]
    fn a_path_names_its_key_as_version_1_did() {
        // 16 hex digits of SHA-256 of the path's text, as `printf %s PATH | sha256sum` says.
        assert_eq!(
            KeyId::of_path(Path::new("/tmp/legacyfix/home/data/cache.bin")).to_string(),
            "9cc69447cc804210"
        );
    }
}
