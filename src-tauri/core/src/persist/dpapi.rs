//! The cache file encrypted with Windows DPAPI (user scope), like MSAL's Windows persistence.
//!
//! # Persistence
//! DPAPI derives its key from the user's logon credentials: the file **survives reboots** and
//! can be decrypted only by the same Windows user (on the same machine, unless roaming profiles
//! carry the master key).
//!
//! # Failing closed
//! DPAPI refuses to decrypt when the user's master key is not loaded (an SSH session with key
//! authentication, a service logon, a password reset by an administrator) as it does for a
//! damaged blob, and its error codes do not tell the two apart reliably. So only a file that is
//! not a DPAPI blob at all ([`is_dpapi_blob`]) is "corrupt" and kept aside on the next write;
//! any other decrypt failure is [`Error::KeyStore`], which stops reads and writes and leaves the
//! file alone. The store is also probed when it is opened (a round trip of a few bytes), so a
//! session without DPAPI fails at once instead of at the first save.
//!
//! Verified how: [`is_dpapi_blob`] and the choice between the two errors are unit-tested on
//! Linux; the DPAPI calls are type-checked for `x86_64-pc-windows-gnu` only, never run here.

use std::path::Path;

use crate::Error;

/// Every DPAPI blob starts with version 1 and the provider GUID
/// `df9d8cd0-1501-11d1-8c7a-00c04fc297eb` (little-endian fields).
const BLOB_HEADER: [u8; 20] = [
    0x01, 0x00, 0x00, 0x00, 0xd0, 0x8c, 0x9d, 0xdf, 0x01, 0x15, 0xd1, 0x11, 0x8c, 0x7a, 0x00, 0xc0,
    0x4f, 0xc2, 0x97, 0xeb,
];

/// Whether `blob` is a DPAPI blob, whatever DPAPI makes of it now.
pub(super) fn is_dpapi_blob(blob: &[u8]) -> bool {
    blob.starts_with(&BLOB_HEADER)
}

/// What a failed decrypt of the file at `path` holding `blob` means (see the module doc).
pub(super) fn decrypt_failure(blob: &[u8], path: &Path, why: &str) -> Error {
    if is_dpapi_blob(blob) {
        Error::KeyStore {
            backend: "dpapi",
            reason: format!(
                "DPAPI could not decrypt {}: {why}. The file is left as it is. Over SSH or in a \
                 service, Windows may not have loaded your DPAPI key: sign in to the desktop, or \
                 run tokentray there",
                path.display()
            ),
        }
    } else {
        Error::CacheCorrupt {
            reason: "not a DPAPI blob".into(),
            path: path.to_path_buf(),
        }
    }
}

#[cfg(windows)]
pub use file::DpapiFile;

#[cfg(windows)]
mod file {
    use std::path::{Path, PathBuf};

    use windows_dpapi::{Scope, decrypt_data, encrypt_data};
    use zeroize::Zeroizing;

    use super::super::{Backend, Persistence};
    use super::decrypt_failure;
    use crate::files;
    use crate::{Error, Result};

    /// Entropy mixed into every blob so other DPAPI users of this account cannot open it by
    /// accident.
    const ENTROPY: &[u8] = b"tokentray token cache v1";

    /// The DPAPI-protected cache file.
    #[derive(Debug)]
    pub struct DpapiFile {
        path: PathBuf,
    }

    impl DpapiFile {
        /// The store at `path`.
        pub fn new(path: PathBuf) -> Self {
            Self { path }
        }

        /// `Ok` if DPAPI encrypts and decrypts for this user now; otherwise why not.
        pub fn probe(&self) -> std::result::Result<(), String> {
            let probe = b"tokentray dpapi probe";
            let blob =
                encrypt_data(probe, Scope::User, Some(ENTROPY)).map_err(|e| e.to_string())?;
            match decrypt_data(&blob, Scope::User, Some(ENTROPY)) {
                Ok(back) if back == probe => Ok(()),
                Ok(_) => Err("DPAPI returned other bytes than it was given".into()),
                Err(e) => Err(e.to_string()),
            }
        }
    }

    impl Persistence for DpapiFile {
        fn backend(&self) -> Backend {
            Backend::Dpapi
        }

        fn location(&self) -> &Path {
            &self.path
        }

        fn load(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
            let Some(blob) = files::read_private(&self.path)? else {
                return Ok(None);
            };
            match decrypt_data(&blob, Scope::User, Some(ENTROPY)) {
                Ok(plain) => Ok(Some(Zeroizing::new(plain))),
                Err(e) => Err(decrypt_failure(&blob, &self.path, &format!("{e:#}"))),
            }
        }

        fn save(&self, bytes: Zeroizing<Vec<u8>>) -> Result<()> {
            let blob =
                encrypt_data(&bytes, Scope::User, Some(ENTROPY)).map_err(|e| Error::KeyStore {
                    backend: "dpapi",
                    reason: format!("{e:#}"),
                })?;
            files::write_atomic(&self.path, &blob)
        }

        fn move_aside(&self, why: &str) -> Result<Option<PathBuf>> {
            files::move_aside_if_exists(&self.path, why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_that_is_no_dpapi_blob_is_corrupt() {
        let path = Path::new("tokens.dpapi");
        let mut blob = BLOB_HEADER.to_vec();
        blob.extend([0x42; 100]);
        // DPAPI refused a real blob (no key loaded, or damaged inside): stop, keep the file.
        let refused = decrypt_failure(&blob, path, "Key not valid for use in specified state");
        assert!(
            matches!(
                refused,
                Error::KeyStore {
                    backend: "dpapi",
                    ..
                }
            ),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("left as it is"), "{refused}");
        // Not a DPAPI blob at all (truncated, overwritten, another format): corrupt.
        for bad in [&b""[..], &blob[..19], b"{\"AccessToken\":{}}"] {
            let e = decrypt_failure(bad, path, "The data is invalid");
            assert!(matches!(e, Error::CacheCorrupt { .. }), "{e:?}");
        }
    }
}
