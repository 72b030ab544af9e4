//! The keys a JWT is verified with: the algorithms better-auth signs with,
//! the signature arithmetic as a port ([`JwsKey`], implemented in `infra`
//! with well-kept JOSE crates), and where the keys come from ([`KeySource`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Error;

/// The asymmetric algorithms better-auth's jwt plugin can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    /// Ed25519 (better-auth's default).
    EdDsa,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-521 with SHA-512.
    Es512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
}

impl JwsAlgorithm {
    /// The algorithm a JOSE `alg` names, if it is one of those accepted.
    pub fn parse(alg: &str) -> Option<Self> {
        Some(match alg {
            "EdDSA" => Self::EdDsa,
            "ES256" => Self::Es256,
            "ES512" => Self::Es512,
            "RS256" => Self::Rs256,
            "PS256" => Self::Ps256,
            _ => return None,
        })
    }

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Es512 => "ES512",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }
}

/// A public key able to check a signature (implemented with a JOSE crate).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait JwsKey: Send + Sync + std::fmt::Debug {
    /// Whether `signature` (the token's third segment, base64url) signs
    /// `message` (the ASCII of `<header>.<payload>`) under this key with its
    /// algorithm.
    fn verify(&self, message: &[u8], signature: &str) -> bool;
}

/// One verification key, as its source describes it.
#[derive(Debug, Clone)]
pub struct VerificationKey {
    /// The key id (`kid`).
    pub kid: String,
    /// The algorithm it signs with.
    pub alg: JwsAlgorithm,
    /// When better-auth rotated it out (`None`: current).
    pub expires_at: Option<DateTime<Utc>>,
    /// The key itself.
    pub key: Arc<dyn JwsKey>,
}

/// Where the keys come from: better-auth's `jwks` table or its JWKS URL.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeySource: Send + Sync {
    /// Every usable key. Keys that cannot be read are skipped (and logged).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the source cannot be reached.
    async fn fetch(&self) -> Result<Vec<VerificationKey>, Error>;
}
