//! Identifiers and opaque secrets: random tokens, GUIDs (random or derived from a seed), base64url.
//!
//! Secrets (codes, refresh tokens, device codes) are only ever stored by their SHA-256 digest.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// The SHA-256 of a secret: how the store keys codes and tokens without holding them.
pub type Digest = [u8; 32];

/// `n` bytes from the OS random source.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, getrandom::Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)?;
    Ok(buf)
}

/// An opaque secret shaped like Entra's (`prefix` + base64url of `len` random bytes).
pub fn random_token(prefix: &str, len: usize) -> Result<String, getrandom::Error> {
    Ok(format!("{prefix}{}", b64url(&random_bytes(len)?)))
}

/// A random version-4 GUID.
pub fn random_guid() -> Result<String, getrandom::Error> {
    let bytes = random_bytes(16)?;
    Ok(format_guid(&bytes))
}

/// A GUID derived from `label` and `input`: the same inputs give the same GUID on every run.
pub fn derived_guid(label: &str, input: &str) -> String {
    let hash = Sha256::new()
        .chain_update(b"fake-entra\0")
        .chain_update(label.as_bytes())
        .chain_update(b"\0")
        .chain_update(input.as_bytes())
        .finalize();
    format_guid(&hash[..16])
}

/// Formats 16 bytes as a lowercase version-4, RFC 4122-variant GUID.
fn format_guid(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// True for `8-4-4-4-12` hex GUIDs (either case).
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Unpadded base64url, as JWTs, PKCE and `client_info` use.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Digest {
    Sha256::digest(data).into()
}

/// The store key of a secret.
pub fn digest(secret: &str) -> Digest {
    sha256(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_guids_are_stable_and_well_formed() {
        let a = derived_guid("oid", "alice@contoso.example");
        assert_eq!(a, derived_guid("oid", "alice@contoso.example"));
        assert_ne!(a, derived_guid("oid", "bob@contoso.example"));
        assert!(is_guid(&a));
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn guid_shape_is_checked() {
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_guid("contoso.example"));
        assert!(!is_guid("72f988bf86f141af91ab2d7cd011db47"));
    }
}
