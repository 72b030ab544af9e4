//! better-auth session tokens and their signatures.
//!
//! better-auth stores a random 32-character token (letters and digits) in its
//! `session` table and hands the browser a *signed* cookie:
//! `encodeURIComponent(token + "." + base64(HMAC-SHA256(secret, token)))`.
//! The signature is standard base64 with padding: 44 characters ending in `=`.
//! We verify exactly as better-call's `getSignedCookie` does — split at the
//! **last** dot, check the signature's shape, verify in constant time — and in
//! addition refuse any token that is not 32 ASCII alphanumerics, so garbage
//! never reaches a database.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use crate::error::AuthFailure;

type HmacSha256 = Hmac<Sha256>;

/// Length of a better-auth session token.
pub const TOKEN_LEN: usize = 32;
/// Length of a base64 HMAC-SHA256 signature with padding.
const SIGNATURE_LEN: usize = 44;
/// `token.signature`, decoded.
const SIGNED_LEN: usize = TOKEN_LEN + 1 + SIGNATURE_LEN;

/// A session token of the right shape (32 ASCII letters and digits).
/// Its `Debug` output is redacted so it never lands in a log by accident.
///
/// Held inline (its length is fixed), so verifying a cookie allocates nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken([u8; TOKEN_LEN]);

impl SessionToken {
    /// Accepts a token of exactly 32 ASCII letters and digits.
    ///
    /// # Errors
    /// [`AuthFailure::Malformed`] for any other shape.
    pub fn parse(raw: &str) -> Result<Self, AuthFailure> {
        let bytes: [u8; TOKEN_LEN] = raw.as_bytes().try_into().map_err(|_| AuthFailure::Malformed)?;
        if bytes.iter().all(u8::is_ascii_alphanumeric) {
            Ok(Self(bytes))
        } else {
            Err(AuthFailure::Malformed)
        }
    }

    /// The token itself, for the session-store query only.
    pub fn expose(&self) -> &str {
        // ASCII letters and digits only (checked by `parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The SHA-256 of the token: the only form of it that may be used as a cache key.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// Lower-case hex SHA-256 of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// The SHA-256 of any credential (a session token, a JWT).
    pub fn of(credential: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(credential)))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Verifies better-auth signatures against one or more secrets.
///
/// The HMAC key schedule is computed once per secret at construction; each
/// verification clones the prepared state instead of re-keying.
#[derive(Clone)]
pub struct SignatureVerifier {
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureVerifier({} key(s))", self.keys.len())
    }
}

impl SignatureVerifier {
    /// Builds a verifier. The first secret is the current one (better-auth signs
    /// with it); the others are older secrets still accepted during a rotation.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Self {
        let keys = secrets
            .iter()
            .filter_map(|s| HmacSha256::new_from_slice(s.as_ref()).ok())
            .collect();
        Self { keys }
    }

    /// Signs `token` with the current secret, as better-auth does: standard
    /// base64 with padding. Used by the dev seed and tests.
    pub fn sign(&self, token: &str) -> Option<String> {
        let mut mac = self.keys.first()?.clone();
        mac.update(token.as_bytes());
        Some(STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// The value of a signed cookie for `token`, percent-encoded as better-auth
    /// sets it.
    pub fn signed_cookie_value(&self, token: &str) -> Option<String> {
        let signature = self.sign(token)?;
        Some(
            format!("{token}.{signature}")
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D"),
        )
    }

    /// Verifies a signed value (`<token>.<signature>`, possibly percent-encoded)
    /// and returns the token.
    ///
    /// # Errors
    /// [`AuthFailure::Malformed`] when the value has no dot, a signature of the
    /// wrong shape, or a token that is not 32 letters/digits;
    /// [`AuthFailure::BadSignature`] when no secret produced the signature.
    pub fn verify(&self, signed: &str) -> Result<SessionToken, AuthFailure> {
        // A well-formed value decodes to exactly `token.signature`; anything
        // longer is refused while decoding, so it needs no allocation.
        let mut buffer = [0_u8; SIGNED_LEN];
        let mut len = 0;
        for byte in percent_decode_str(signed) {
            *buffer.get_mut(len).ok_or(AuthFailure::Malformed)? = byte;
            len += 1;
        }
        let decoded = std::str::from_utf8(&buffer[..len]).map_err(|_| AuthFailure::Malformed)?;
        let (token, signature) = decoded.rsplit_once('.').ok_or(AuthFailure::Malformed)?;
        if token.is_empty() || signature.len() != SIGNATURE_LEN || !signature.ends_with('=') {
            return Err(AuthFailure::Malformed);
        }
        let token = SessionToken::parse(token)?;
        // 44 base64 characters with padding are 32 bytes; one spare byte
        // keeps the decoder's length estimate satisfied.
        let mut signature_bytes = [0_u8; 33];
        let written = STANDARD
            .decode_slice(signature, &mut signature_bytes)
            .map_err(|_| AuthFailure::Malformed)?;
        let signature = &signature_bytes[..written];
        // Every key is tried (no early exit) so timing does not reveal which
        // secret, if any, matched; `verify_slice` itself is constant-time.
        let mut valid = false;
        for key in &self.keys {
            let mut mac = key.clone();
            mac.update(token.expose().as_bytes());
            valid |= mac.verify_slice(signature).is_ok();
        }
        if valid {
            Ok(token)
        } else {
            Err(AuthFailure::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "better-auth-secret-123456789012345678901234";
    const TOKEN: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";

    fn verifier() -> SignatureVerifier {
        SignatureVerifier::new(&[SECRET])
    }

    #[test]
    fn signature_matches_an_independent_hmac_computation() {
        // HMAC-SHA256(SECRET, TOKEN), computed with `openssl dgst -sha256 -hmac … -binary | base64`.
        let expected = "l8gUR2VyImNEH9edSQieOe/oPdc8KMMgEjPrba45OEo=";
        let signature = verifier().sign(TOKEN).unwrap();
        assert_eq!(signature.len(), 44);
        assert_eq!(signature, expected);
    }

    #[test]
    fn a_correctly_signed_cookie_yields_its_token() {
        let v = verifier();
        let cookie = v.signed_cookie_value(TOKEN).unwrap();
        assert!(cookie.contains("%3D"), "cookie must be percent-encoded: {cookie}");
        assert_eq!(v.verify(&cookie).unwrap().expose(), TOKEN);
        // The raw (not encoded) form is accepted too.
        let raw = format!("{TOKEN}.{}", v.sign(TOKEN).unwrap());
        assert_eq!(v.verify(&raw).unwrap().expose(), TOKEN);
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let v = verifier();
        let signature = v.sign(TOKEN).unwrap();
        let tampered = format!("{}X.{signature}", &TOKEN[..31]);
        assert_eq!(v.verify(&tampered), Err(AuthFailure::BadSignature));
    }

    #[test]
    fn a_tampered_signature_is_refused() {
        let v = verifier();
        let mut signature = v.sign(TOKEN).unwrap().into_bytes();
        signature[0] = if signature[0] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{TOKEN}.{}", String::from_utf8(signature).unwrap());
        assert_eq!(v.verify(&tampered), Err(AuthFailure::BadSignature));
    }

    #[test]
    fn a_signature_made_with_another_secret_is_refused() {
        let other = SignatureVerifier::new(&["another-secret-another-secret-another"]);
        let cookie = other.signed_cookie_value(TOKEN).unwrap();
        assert_eq!(verifier().verify(&cookie), Err(AuthFailure::BadSignature));
    }

    #[test]
    fn an_older_rotated_secret_is_still_accepted() {
        let old = SignatureVerifier::new(&["old-secret-old-secret-old-secret-old"]);
        let rotated = SignatureVerifier::new(&[SECRET, "old-secret-old-secret-old-secret-old"]);
        let cookie = old.signed_cookie_value(TOKEN).unwrap();
        assert_eq!(rotated.verify(&cookie).unwrap().expose(), TOKEN);
    }

    #[test]
    fn unsigned_and_misshapen_values_are_malformed() {
        let v = verifier();
        let sig = v.sign(TOKEN).unwrap();
        for bad in [
            TOKEN.to_owned(),                               // no signature at all
            format!("{TOKEN}."),                            // empty signature
            format!(".{sig}"),                              // empty token
            format!("{TOKEN}.{}", &sig[..43]),              // short signature
            format!("{TOKEN}.{}A", &sig[..43]),             // no padding
            format!("short.{sig}"),                         // token too short
            format!("{}!.{sig}", &TOKEN[..31]),             // non-alphanumeric token
            format!("{TOKEN}.{}%ZZ", &sig[..41]),           // broken percent-encoding
            format!("{TOKEN}.{}%FF", &sig[..43]),           // not UTF-8 once decoded
            format!("{TOKEN}.{sig}="),                      // one byte too long
            format!("{}{TOKEN}.{sig}", "A".repeat(10_000)), // far too long
        ] {
            assert_eq!(v.verify(&bad), Err(AuthFailure::Malformed), "{bad}");
        }
    }

    #[test]
    fn the_last_dot_separates_token_from_signature() {
        let v = verifier();
        let sig = v.sign(TOKEN).unwrap();
        // A dot inside the token part makes the token misshapen, never a different split.
        let value = format!("ab.{TOKEN}.{sig}");
        assert_eq!(v.verify(&value), Err(AuthFailure::Malformed));
    }

    #[test]
    fn token_hash_is_hex_sha256_and_debug_is_redacted() {
        let token = SessionToken::parse(TOKEN).unwrap();
        assert_eq!(token.hash().as_str().len(), 64);
        assert_ne!(token.hash().as_str(), TOKEN);
        assert!(!format!("{token:?}").contains(TOKEN));
    }
}
