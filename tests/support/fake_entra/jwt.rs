//! RS256 JWTs and the JWKS that verifies them.
//!
//! One 2048-bit RSA key per process (generated on first use and shared by every fake started in
//! that process, since key generation is the slowest part of starting).

use std::sync::{Arc, Mutex, PoisonError};

use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, rand_core::OsRng};
use serde_json::{Value, json};
use sha2::Sha256;

use super::ids::{b64url, sha256};

/// Signs tokens; holds the private key.
pub struct TokenSigner {
    key: SigningKey<Sha256>,
    /// Key id (`kid` and `x5t`): base64url of the first 20 bytes of SHA-256(modulus).
    kid: String,
    /// Public modulus, base64url.
    n: String,
    /// Public exponent, base64url.
    e: String,
}

/// Key generation failed.
#[derive(Debug, thiserror::Error)]
#[error("RSA key generation failed: {0}")]
pub struct KeyError(#[from] rsa::Error);

static SHARED: Mutex<Option<Arc<TokenSigner>>> = Mutex::new(None);

impl TokenSigner {
    /// The process-wide signer, generating its key on first use.
    pub fn shared() -> Result<Arc<Self>, KeyError> {
        let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(signer) = slot.as_ref() {
            return Ok(signer.clone());
        }
        let signer = Arc::new(Self::generate()?);
        *slot = Some(signer.clone());
        Ok(signer)
    }

    /// A signer with a fresh 2048-bit key.
    pub fn generate() -> Result<Self, KeyError> {
        let private = RsaPrivateKey::new(&mut OsRng, 2048)?;
        let n_bytes = private.n().to_bytes_be();
        let kid = b64url(&sha256(&n_bytes)[..20]);
        Ok(Self {
            n: b64url(&n_bytes),
            e: b64url(&private.e().to_bytes_be()),
            kid,
            key: SigningKey::<Sha256>::new(private),
        })
    }

    /// `header.payload.signature` for these claims.
    pub fn sign(&self, claims: &Value) -> Result<String, rsa::signature::Error> {
        let header = json!({ "typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = self.key.try_sign(input.as_bytes())?;
        Ok(format!("{input}.{}", b64url(&signature.to_bytes())))
    }

    /// The claims of `token` if this signer signed it (RS256, any claims); `None` otherwise.
    pub fn verify(&self, token: &str) -> Option<Value> {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use rsa::signature::{Keypair as _, Verifier as _};
        let (input, signature) = token.rsplit_once('.')?;
        let (_, payload) = input.split_once('.')?;
        let signature =
            rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(signature).ok()?.as_slice())
                .ok()?;
        self.key
            .verifying_key()
            .verify(input.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// The public key as one JWKS entry (`issuer` as Entra writes it into v2 key sets).
    pub fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
            "issuer": issuer,
        })
    }
}
