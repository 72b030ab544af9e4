//! JWTs issued by better-auth's jwt plugin, verified against its public keys.
//!
//! The rules live here; the signature arithmetic is a port ([`JwsKey`],
//! implemented in `infra` with well-kept JOSE crates) and so are the keys'
//! whereabouts ([`KeySource`]: better-auth's `jwks` table or its JWKS URL).
//!
//! - A token is three base64url segments, at most 8 KiB: anything else is
//!   refused before any key is looked at.
//! - The header's `alg` must be an asymmetric algorithm (`none` and HMAC are
//!   refused) and equal to its key's; the `kid` must name a known key. An
//!   unknown `kid` triggers a refresh of the keys at most once per
//!   [`REFRESH_EVERY`], so a flood of random `kid`s costs at most one fetch
//!   per 10 s; requests that need a key while it is being fetched wait for
//!   that one fetch (none is refused for arriving during it); a failed
//!   refresh keeps the keys already known.
//! - A key past its `expiresAt` plus the grace period is refused.
//! - Claims: `exp` required (with [`LEEWAY`]), `nbf` honoured, `iss` equal to
//!   the issuer, `aud` (a string or a list) containing the audience, `sub`
//!   the user id. The user comes from the claims (better-auth's default
//!   payload is the user object): no database or cache round trip.
//! - A header with `crit` (RFC 7515 §4.1.11: extensions the verifier must
//!   understand; this one understands none, `b64: false` included) is refused.
//! - A token whose claims say `banned: true` (admin plugin, ban not expired)
//!   is refused. The first time a token is seen its user is looked up
//!   (`with_users`): an unknown or deleted user, or a banned one, is refused;
//!   if the database cannot be asked, the claims are trusted for this request
//!   only and the token is not remembered.
//! - The key set is re-read at least every [`KEYS_MAX_AGE`] (so a key
//!   removed from the JWKS or the table stops verifying even when no unknown
//!   `kid` arrives), and a remembered token is only served while its key is
//!   still in the set.
//! - A JWT stays valid until its `exp` even if its session is revoked
//!   (better-auth's own rule). A verified token is therefore remembered in
//!   process until its `exp`, keyed by its SHA-256 (at most
//!   [`REMEMBERED_MAX`] of them), so a client re-sending it costs a hash and a
//!   key lookup, not a signature check.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::Digest as _;

use super::port::{SessionStore, UserRecord};
use crate::clock::Clock;
use crate::error::{AuthFailure, Error};
use crate::revocation::{Mark, Revocations};
use crate::user::User;

/// Longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(LEEWAY_SECS.unsigned_abs());
const LEEWAY_SECS: i64 = 30;
/// At most one refresh of the keys per this long.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// The key set is re-read once it is older than this.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(600);
/// Verified tokens remembered at most (then the expired go, or all).
pub const REMEMBERED_MAX: usize = 10_000;

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

/// What a deployment expects of its tokens.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// `iss` must equal this.
    pub issuer: String,
    /// `aud` must contain this.
    pub audience: String,
    /// A key stays usable this long after its `expiresAt`.
    pub key_grace: Duration,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    /// Extensions the verifier must understand (none are).
    crit: Option<serde_json::Value>,
    /// RFC 7797's unencoded payload: only the default (`true`) is understood.
    b64: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// better-auth's default payload: the user object plus the registered claims.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    sub: String,
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    /// The admin plugin's ban, when better-auth put the user's fields in the payload.
    #[serde(default)]
    banned: Option<bool>,
    #[serde(default)]
    ban_expires: Option<DateTime<Utc>>,
}

/// A verified token: the user and until when it may be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    /// The user the claims describe.
    pub user: User,
    /// The token's `exp`.
    pub expires_at: DateTime<Utc>,
    /// The key that signed it.
    pub kid: String,
    /// When it was verified (see [`crate::revocation`]).
    pub verified_at: DateTime<Utc>,
}

/// Whether `value` has the shape of a JWS (three non-empty base64url
/// segments): the bearer value is then a JWT, not a session token.
pub fn looks_like_jwt(value: &str) -> bool {
    let mut segments = value.split('.');
    let shaped = |s: Option<&str>| {
        s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    };
    shaped(segments.next()) && shaped(segments.next()) && shaped(segments.next()) && segments.next().is_none()
}

#[derive(Debug, Default)]
struct Keys {
    by_kid: HashMap<String, VerificationKey>,
    last_attempt: Option<DateTime<Utc>>,
    /// When the set was last read successfully.
    fetched_at: Option<DateTime<Utc>>,
}

/// Verifies better-auth JWTs (see the module docs).
pub struct JwtVerifier {
    source: Arc<dyn KeySource>,
    clock: Arc<dyn Clock>,
    settings: JwtSettings,
    keys: RwLock<Keys>,
    remembered: RwLock<HashMap<[u8; 32], VerifiedJwt>>,
    /// Where a token's user is looked up the first time it is seen.
    users: Option<Arc<dyn SessionStore>>,
    revocations: Arc<Revocations>,
    /// Held while the keys are fetched: one fetch at a time, and whoever
    /// waited for it looks again before deciding.
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn refused(reason: AuthFailure) -> Error {
    Error::Unauthenticated(reason)
}

fn decode_json<T: serde::de::DeserializeOwned>(segment: &str) -> Result<T, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| refused(AuthFailure::Malformed))?;
    serde_json::from_slice(&bytes).map_err(|_| refused(AuthFailure::Malformed))
}

impl JwtVerifier {
    /// A verifier of tokens signed by keys from `source`.
    pub fn new(source: Arc<dyn KeySource>, clock: Arc<dyn Clock>, settings: JwtSettings) -> Self {
        Self {
            source,
            clock,
            settings,
            keys: RwLock::new(Keys::default()),
            remembered: RwLock::new(HashMap::new()),
            users: None,
            revocations: Arc::default(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// A remembered token is served only while no change concerning its
    /// user (a ban, a deletion) arrived since it was verified.
    #[must_use]
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = revocations;
        self
    }

    /// The key set changed (better-auth rotated, retired or deleted a key):
    /// the next token re-reads it at once, not after [`KEYS_MAX_AGE`].
    pub fn invalidate_keys(&self) {
        let mut keys = self.write();
        keys.fetched_at = None;
        keys.last_attempt = None;
    }

    /// Looks a token's user up in `users` the first time the token is seen:
    /// a deleted, unknown or banned user is refused.
    #[must_use]
    pub fn with_users(mut self, users: Arc<dyn SessionStore>) -> Self {
        self.users = Some(users);
        self
    }

    /// Verifies `token` and returns the user it names.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] with the reason for any refused token.
    pub async fn verify(&self, token: &str) -> Result<VerifiedJwt, Error> {
        if token.len() > MAX_TOKEN_BYTES || !looks_like_jwt(token) {
            return Err(refused(AuthFailure::Malformed));
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = self.clock.now();
        let known = self
            .remembered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .cloned();
        if let Some(known) = known {
            // Remembered tokens are re-checked against `exp` (with the leeway)
            // and their key's presence in a fresh enough key set.
            if known.expires_at + chrono::Duration::seconds(LEEWAY_SECS) > now
                && self
                    .revocations
                    .trusts(known.verified_at, &[Mark::User(&known.user.id)])
                && self.still_known(&known.kid, now).await
            {
                return Ok(known);
            }
        }
        let verified = self.verify_afresh(token).await?;
        if !self.user_confirmed(&verified.user.id, now).await? {
            return Ok(verified);
        }
        let mut remembered = self.remembered.write().unwrap_or_else(PoisonError::into_inner);
        if remembered.len() >= REMEMBERED_MAX {
            remembered.retain(|_, v| v.expires_at + chrono::Duration::seconds(LEEWAY_SECS) > now);
            if remembered.len() >= REMEMBERED_MAX {
                remembered.clear();
            }
        }
        remembered.insert(digest, verified.clone());
        Ok(verified)
    }

    /// Whether the token's user exists and is not banned: `Ok(true)` when
    /// confirmed (or not asked for), `Ok(false)` when the database could not
    /// answer (trust the claims this once, do not remember).
    async fn user_confirmed(&self, user_id: &str, now: DateTime<Utc>) -> Result<bool, Error> {
        let Some(users) = &self.users else {
            return Ok(true);
        };
        match users.find_user(user_id).await {
            Ok(Some(UserRecord {
                banned, ban_expires, ..
            })) if banned && ban_expires.is_none_or(|until| until > now) => Err(refused(AuthFailure::Banned)),
            Ok(Some(_)) => Ok(true),
            Ok(None) => Err(refused(AuthFailure::UnknownUser)),
            Err(error) => {
                tracing::warn!(error = %error, "could not look a JWT's user up; trusting its claims for this request");
                Ok(false)
            }
        }
    }

    async fn verify_afresh(&self, token: &str) -> Result<VerifiedJwt, Error> {
        let mut parts = token.splitn(3, '.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(refused(AuthFailure::Malformed));
        };
        let header: Header = decode_json(header_b64)?;
        if header.crit.is_some()
            || header
                .b64
                .as_ref()
                .is_some_and(|b64| *b64 != serde_json::Value::Bool(true))
        {
            return Err(refused(AuthFailure::UnsupportedHeader));
        }
        let alg = JwsAlgorithm::parse(&header.alg).ok_or(refused(AuthFailure::UnsupportedAlgorithm))?;
        let kid = header.kid.ok_or(refused(AuthFailure::UnknownKey))?;
        let key = self.key(&kid).await?;
        if key.alg != alg {
            return Err(refused(AuthFailure::UnsupportedAlgorithm));
        }
        let now = self.clock.now();
        if let Some(expired) = key.expires_at {
            let grace = chrono::Duration::from_std(self.settings.key_grace).unwrap_or(chrono::Duration::MAX);
            if expired.checked_add_signed(grace).is_some_and(|until| until <= now) {
                return Err(refused(AuthFailure::RetiredKey));
            }
        }
        let message = &token[..header_b64.len() + 1 + payload_b64.len()];
        if !key.key.verify(message.as_bytes(), signature_b64) {
            return Err(refused(AuthFailure::BadSignature));
        }
        let claims: Claims = decode_json(payload_b64)?;
        self.check_claims(claims, kid, now)
    }

    fn check_claims(&self, claims: Claims, kid: String, now: DateTime<Utc>) -> Result<VerifiedJwt, Error> {
        let leeway = LEEWAY_SECS;
        let exp = claims.exp.ok_or(refused(AuthFailure::Expired))?;
        if exp.saturating_add(leeway) <= now.timestamp() {
            return Err(refused(AuthFailure::Expired));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(leeway) > now.timestamp())
        {
            return Err(refused(AuthFailure::NotYetValid));
        }
        if claims.iss.as_deref() != Some(self.settings.issuer.as_str()) {
            return Err(refused(AuthFailure::WrongIssuer));
        }
        let audience_ok = match &claims.aud {
            Some(Audience::One(aud)) => *aud == self.settings.audience,
            Some(Audience::Many(auds)) => auds.contains(&self.settings.audience),
            None => false,
        };
        if !audience_ok {
            return Err(refused(AuthFailure::WrongAudience));
        }
        if claims.sub.is_empty() {
            return Err(refused(AuthFailure::Malformed));
        }
        if claims.banned == Some(true) && claims.ban_expires.is_none_or(|until| until > now) {
            return Err(refused(AuthFailure::Banned));
        }
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or(refused(AuthFailure::Malformed))?;
        let issued = claims.created_at.unwrap_or(DateTime::UNIX_EPOCH);
        Ok(VerifiedJwt {
            user: User {
                id: claims.sub,
                email: claims.email.unwrap_or_default(),
                name: claims.name.unwrap_or_default(),
                email_verified: claims.email_verified.unwrap_or(false),
                image: claims.image,
                created_at: issued,
                updated_at: claims.updated_at.unwrap_or(issued),
            },
            expires_at,
            kid,
            verified_at: now,
        })
    }

    /// The key `kid`, re-reading the keys first when it is unknown or the set
    /// is older than [`KEYS_MAX_AGE`], at most once per [`REFRESH_EVERY`].
    async fn key(&self, kid: &str) -> Result<VerificationKey, Error> {
        let now = self.clock.now();
        if let Some(key) = self.known_fresh(kid, now) {
            return Ok(key);
        }
        let _one_fetch_at_a_time = self.refreshing.lock().await;
        if let Some(key) = self.known_fresh(kid, now) {
            return Ok(key);
        }
        let every = chrono::Duration::from_std(REFRESH_EVERY).unwrap_or(chrono::Duration::MAX);
        let recent = self
            .read()
            .last_attempt
            .is_some_and(|at| at.checked_add_signed(every).is_some_and(|next| next > now));
        if recent {
            // A set that could not be re-read lately is kept rather than
            // refusing every token while the source is down.
            return self.known(kid).ok_or(refused(AuthFailure::UnknownKey));
        }
        self.write().last_attempt = Some(now);
        match self.source.fetch().await {
            Ok(keys) => {
                let by_kid = keys.into_iter().map(|k| (k.kid.clone(), k)).collect();
                let mut known = self.write();
                known.by_kid = by_kid;
                known.fetched_at = Some(now);
            }
            Err(error) => tracing::warn!(error = %error, "could not refresh the JWT keys; keeping the ones known"),
        }
        self.known(kid).ok_or(refused(AuthFailure::UnknownKey))
    }

    fn known(&self, kid: &str) -> Option<VerificationKey> {
        self.read().by_kid.get(kid).cloned()
    }

    /// The key `kid` while the set is younger than [`KEYS_MAX_AGE`].
    fn known_fresh(&self, kid: &str, now: DateTime<Utc>) -> Option<VerificationKey> {
        let keys = self.read();
        if Self::fresh(&keys, now) {
            keys.by_kid.get(kid).cloned()
        } else {
            None
        }
    }

    fn fresh(keys: &Keys, now: DateTime<Utc>) -> bool {
        let max_age = chrono::Duration::from_std(KEYS_MAX_AGE).unwrap_or(chrono::Duration::MAX);
        keys.fetched_at
            .is_some_and(|at| at.checked_add_signed(max_age).is_some_and(|until| until > now))
    }

    /// Whether `kid` is still in the key set, for a remembered token: a
    /// lookup under the read lock while the set is fresh (no clone on the
    /// request path), else a re-read as [`Self::key`] does.
    async fn still_known(&self, kid: &str, now: DateTime<Utc>) -> bool {
        {
            let keys = self.read();
            if Self::fresh(&keys, now) {
                return keys.by_kid.contains_key(kid);
            }
        }
        self.key(kid).await.is_ok()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;
    use chrono::TimeZone;

    const ISSUER: &str = "https://auth.example.com";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn b64(json: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
    }

    /// A token whose signature is the bytes `good` (the fake key accepts only those).
    fn token(header: serde_json::Value, claims: serde_json::Value) -> String {
        format!("{}.{}.{}", b64(&header), b64(&claims), URL_SAFE_NO_PAD.encode(b"good"))
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "sub": "user-1", "iss": ISSUER, "aud": ISSUER, "exp": now().timestamp() + 900,
            "email": "ada@example.com", "name": "Ada", "emailVerified": true, "image": null,
            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-02-01T00:00:00.000Z", "id": "user-1"
        })
    }

    fn header(kid: &str) -> serde_json::Value {
        serde_json::json!({"alg": "EdDSA", "kid": kid})
    }

    fn fake_key() -> Arc<dyn JwsKey> {
        let mut key = MockJwsKey::new();
        let good = URL_SAFE_NO_PAD.encode(b"good");
        key.expect_verify().returning(move |_, signature| signature == good);
        Arc::new(key)
    }

    fn key(kid: &str, alg: JwsAlgorithm, expires_at: Option<DateTime<Utc>>) -> VerificationKey {
        VerificationKey {
            kid: kid.into(),
            alg,
            expires_at,
            key: fake_key(),
        }
    }

    fn clock_at(at: DateTime<Utc>) -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(move || at);
        Arc::new(clock)
    }

    fn verifier(source: MockKeySource) -> JwtVerifier {
        verifier_at(source, now())
    }

    fn verifier_at(source: MockKeySource, at: DateTime<Utc>) -> JwtVerifier {
        JwtVerifier::new(
            Arc::new(source),
            clock_at(at),
            JwtSettings {
                issuer: ISSUER.into(),
                audience: ISSUER.into(),
                key_grace: Duration::from_secs(30 * 86_400),
            },
        )
    }

    fn source_with(keys: Vec<VerificationKey>) -> MockKeySource {
        let mut source = MockKeySource::new();
        source.expect_fetch().returning(move || Ok(keys.clone()));
        source
    }

    fn reason(result: Result<VerifiedJwt, Error>) -> AuthFailure {
        match result {
            Err(Error::Unauthenticated(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_good_token_gives_the_user_from_its_claims() {
        let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
        let verified = verifier.verify(&token(header("k1"), claims())).await.unwrap();
        assert_eq!(verified.user.id, "user-1");
        assert_eq!(verified.user.email, "ada@example.com");
        assert!(verified.user.email_verified);
        assert_eq!(verified.expires_at.timestamp(), now().timestamp() + 900);
        let mut listed = claims();
        listed["aud"] = serde_json::json!(["other", ISSUER]);
        listed["image"] = serde_json::Value::Null;
        listed.as_object_mut().unwrap().remove("name");
        let verified = verifier.verify(&token(header("k1"), listed)).await.unwrap();
        assert_eq!(verified.user.name, "", "a missing optional claim is empty");
    }

    #[tokio::test]
    async fn none_hmac_a_mismatched_alg_and_a_missing_kid_are_refused() {
        let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
        for alg in ["none", "HS256", "HS512", "ES256"] {
            let t = token(serde_json::json!({"alg": alg, "kid": "k1"}), claims());
            assert_eq!(
                reason(verifier.verify(&t).await),
                AuthFailure::UnsupportedAlgorithm,
                "{alg}"
            );
        }
        let t = token(serde_json::json!({"alg": "EdDSA"}), claims());
        assert_eq!(reason(verifier.verify(&t).await), AuthFailure::UnknownKey);
        let forged = format!(
            "{}.{}",
            token(header("k1"), claims()).rsplit_once('.').unwrap().0,
            "YmFk"
        );
        assert_eq!(reason(verifier.verify(&forged).await), AuthFailure::BadSignature);
    }

    #[tokio::test]
    async fn claims_are_checked_with_leeway() {
        let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
        let with = |field: &str, value: serde_json::Value| {
            let mut c = claims();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(field);
            } else {
                c[field] = value;
            }
            token(header("k1"), c)
        };
        let t = now().timestamp();
        for (field, value, why) in [
            ("exp", serde_json::Value::Null, AuthFailure::Expired),
            ("exp", serde_json::json!(t - 31), AuthFailure::Expired),
            ("nbf", serde_json::json!(t + 31), AuthFailure::NotYetValid),
            (
                "iss",
                serde_json::json!("https://evil.example"),
                AuthFailure::WrongIssuer,
            ),
            (
                "aud",
                serde_json::json!("https://other.example"),
                AuthFailure::WrongAudience,
            ),
            ("aud", serde_json::Value::Null, AuthFailure::WrongAudience),
        ] {
            assert_eq!(
                reason(verifier.verify(&with(field, value.clone())).await),
                why,
                "{field}={value}"
            );
        }
        assert!(
            verifier.verify(&with("exp", serde_json::json!(t - 29))).await.is_ok(),
            "within leeway"
        );
        assert!(verifier.verify(&with("nbf", serde_json::json!(t + 29))).await.is_ok());
        assert!(
            verifier.verify(&with("sub", serde_json::json!(42))).await.is_err(),
            "wrong claim type"
        );
    }

    #[tokio::test]
    async fn a_retired_key_works_through_its_grace_period_only() {
        let day = chrono::Duration::days(1);
        let keys = vec![
            key("recent", JwsAlgorithm::EdDsa, Some(now() - day * 29)),
            key("old", JwsAlgorithm::EdDsa, Some(now() - day * 31)),
        ];
        let verifier = verifier(source_with(keys));
        assert!(verifier.verify(&token(header("recent"), claims())).await.is_ok());
        assert_eq!(
            reason(verifier.verify(&token(header("old"), claims())).await),
            AuthFailure::RetiredKey
        );
    }

    #[tokio::test]
    async fn unknown_kids_refresh_at_most_once_per_ten_seconds_and_outages_keep_known_keys() {
        let mut source = MockKeySource::new();
        let mut calls = 0;
        source.expect_fetch().times(2).returning(move || {
            calls += 1;
            if calls == 1 {
                Ok(vec![key("k1", JwsAlgorithm::EdDsa, None)])
            } else {
                Err(Error::Unavailable(anyhow::anyhow!("jwks down")))
            }
        });
        let verifier = verifier(source);
        assert!(
            verifier.verify(&token(header("k1"), claims())).await.is_ok(),
            "first use loads"
        );
        for i in 0..50 {
            let t = token(header(&format!("random-{i}")), claims());
            assert_eq!(reason(verifier.verify(&t).await), AuthFailure::UnknownKey);
        }
        // Ten seconds later one more fetch is allowed; it fails; k1 still works.
        verifier.write().last_attempt = Some(now() - chrono::Duration::seconds(11));
        assert_eq!(
            reason(verifier.verify(&token(header("new"), claims())).await),
            AuthFailure::UnknownKey
        );
        assert!(verifier.verify(&token(header("k1"), claims())).await.is_ok());
    }

    #[tokio::test]
    async fn malformed_tokens_are_refused_without_touching_the_keys() {
        let mut source = MockKeySource::new();
        source.expect_fetch().never();
        let verifier = verifier(source);
        let long = format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c");
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "a..c",
            "a.b.c!",
            "@@.b.c",
            "e30.e30",
            &long,
            "e30.e30.e30",
        ] {
            let why = reason(verifier.verify(bad).await);
            assert!(
                matches!(why, AuthFailure::Malformed | AuthFailure::UnsupportedAlgorithm),
                "{bad}: {why:?}"
            );
        }
        assert!(!looks_like_jwt("abc.def"));
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt("token.c2ln+/="));
    }

    /// Fuzzing by mutation (no extra crate: a fixed-seed xorshift): 20,000
    /// truncations, byte flips, inserted and removed dots, swapped segments
    /// and random base64url of a valid token. Never a panic, never accepted
    /// unless the token is byte for byte the signed one.
    #[tokio::test]
    async fn mutated_tokens_are_refused_and_never_panic() {
        let good = token(header("k1"), claims());
        // A key that, like a real one, signs exactly one message.
        let (signed, signature) = good
            .rsplit_once('.')
            .map(|(m, s)| (m.to_owned(), s.to_owned()))
            .unwrap();
        let mut strict = MockJwsKey::new();
        strict
            .expect_verify()
            .returning(move |message, sig| message == signed.as_bytes() && sig == signature);
        let verifier = verifier(source_with(vec![VerificationKey {
            kid: "k1".into(),
            alg: JwsAlgorithm::EdDsa,
            expires_at: None,
            key: Arc::new(strict),
        }]));
        assert!(verifier.verify(&good).await.is_ok());
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % (bound.max(1) as u64)).unwrap_or(0)
        };
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \0";
        for _ in 0..20_000 {
            let mut bytes = good.clone().into_bytes();
            match next(6) {
                0 => bytes.truncate(next(bytes.len())),
                1 => {
                    let at = next(bytes.len());
                    bytes[at] = alphabet[next(alphabet.len())];
                }
                2 => bytes.insert(next(bytes.len()), b'.'),
                3 => {
                    if let Some(at) = bytes.iter().position(|b| *b == b'.') {
                        bytes.remove(at);
                    }
                }
                4 => {
                    let parts: Vec<&str> = good.split('.').collect();
                    bytes = format!("{}.{}.{}", parts[next(3)], parts[next(3)], parts[next(3)]).into_bytes();
                }
                _ => bytes = (0..next(300)).map(|_| alphabet[next(alphabet.len())]).collect(),
            }
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            let result = verifier.verify(&mutated).await;
            if mutated != good {
                assert!(
                    matches!(result, Err(Error::Unauthenticated(_))),
                    "{mutated:?} gave {result:?}"
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn requests_arriving_during_the_first_fetch_wait_for_it_instead_of_being_refused() {
        let mut source = MockKeySource::new();
        source.expect_fetch().times(1).returning(|| {
            // A slow source: every other request arrives while this runs.
            std::thread::sleep(std::time::Duration::from_millis(50));
            Ok(vec![key("k1", JwsAlgorithm::EdDsa, None)])
        });
        let verifier = Arc::new(verifier(source));
        let good = token(header("k1"), claims());
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (verifier, token) = (verifier.clone(), good.clone());
                tokio::spawn(async move { verifier.verify(&token).await.is_ok() })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap(), "no request refused while the keys loaded");
        }
    }

    fn user_record(banned: bool, ban_expires: Option<DateTime<Utc>>) -> UserRecord {
        UserRecord {
            user: User {
                id: "user-1".into(),
                email: "ada@example.com".into(),
                name: "Ada".into(),
                email_verified: true,
                image: None,
                created_at: now(),
                updated_at: now(),
            },
            banned,
            ban_expires,
        }
    }

    #[tokio::test]
    async fn a_header_with_extensions_to_understand_is_refused() {
        let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
        for header in [
            serde_json::json!({"alg": "EdDSA", "kid": "k1", "crit": ["exp"]}),
            serde_json::json!({"alg": "EdDSA", "kid": "k1", "crit": ["b64"], "b64": false}),
            serde_json::json!({"alg": "EdDSA", "kid": "k1", "b64": false}),
        ] {
            let refused = verifier.verify(&token(header.clone(), claims())).await;
            assert_eq!(reason(refused), AuthFailure::UnsupportedHeader, "{header}");
        }
        let plain = serde_json::json!({"alg": "EdDSA", "kid": "k1", "typ": "JWT", "b64": true});
        assert!(verifier.verify(&token(plain, claims())).await.is_ok());
    }

    #[tokio::test]
    async fn a_token_whose_claims_say_banned_is_refused_until_the_ban_expires() {
        let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)]));
        let mut banned = claims();
        banned["banned"] = serde_json::json!(true);
        banned["banExpires"] = serde_json::Value::Null;
        assert_eq!(
            reason(verifier.verify(&token(header("k1"), banned.clone())).await),
            AuthFailure::Banned
        );
        banned["banExpires"] = serde_json::json!("2026-05-01T00:00:00.000Z");
        assert!(
            verifier.verify(&token(header("k1"), banned)).await.is_ok(),
            "an expired ban"
        );
    }

    #[tokio::test]
    async fn a_deleted_or_banned_user_is_refused_the_first_time_a_token_is_seen() {
        for (found, expected) in [
            (None, AuthFailure::UnknownUser),
            (Some(user_record(true, None)), AuthFailure::Banned),
        ] {
            let mut users = crate::auth::port::MockSessionStore::new();
            users.expect_find_user().returning(move |_| Ok(found.clone()));
            let verifier =
                verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)])).with_users(Arc::new(users));
            assert_eq!(reason(verifier.verify(&token(header("k1"), claims())).await), expected);
        }
    }

    #[tokio::test]
    async fn a_known_user_is_looked_up_once_per_token_and_an_outage_is_not_remembered() {
        let mut users = crate::auth::port::MockSessionStore::new();
        users
            .expect_find_user()
            .times(1)
            .returning(|_| Ok(Some(user_record(false, None))));
        let verifier = verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)])).with_users(Arc::new(users));
        let token = token(header("k1"), claims());
        for _ in 0..3 {
            assert!(verifier.verify(&token).await.is_ok());
        }

        let mut down = crate::auth::port::MockSessionStore::new();
        down.expect_find_user()
            .times(2)
            .returning(|_| Err(Error::Unavailable(anyhow::anyhow!("database down"))));
        let verifier = verifier_with_users(down);
        for _ in 0..2 {
            assert!(
                verifier.verify(&token).await.is_ok(),
                "the claims are trusted while it is down"
            );
        }
    }

    fn verifier_with_users(users: crate::auth::port::MockSessionStore) -> JwtVerifier {
        verifier(source_with(vec![key("k1", JwsAlgorithm::EdDsa, None)])).with_users(Arc::new(users))
    }

    #[tokio::test]
    async fn the_key_set_is_re_read_after_ten_minutes_and_a_removed_key_stops_its_remembered_tokens() {
        let at = Arc::new(std::sync::Mutex::new(now()));
        let mut clock = MockClock::new();
        let read = at.clone();
        clock.expect_now().returning(move || *read.lock().unwrap());
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut source = MockKeySource::new();
        let counted = fetches.clone();
        source.expect_fetch().returning(move || {
            // The first read has the key; every later one does not (rotated away).
            if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                Ok(vec![key("k1", JwsAlgorithm::EdDsa, None)])
            } else {
                Ok(Vec::new())
            }
        });
        let verifier = JwtVerifier::new(
            Arc::new(source),
            Arc::new(clock),
            JwtSettings {
                issuer: ISSUER.into(),
                audience: ISSUER.into(),
                key_grace: Duration::from_secs(30 * 86_400),
            },
        );
        let token = token(header("k1"), claims());
        assert!(verifier.verify(&token).await.is_ok());
        *at.lock().unwrap() = now() + chrono::Duration::seconds(599);
        assert!(
            verifier.verify(&token).await.is_ok(),
            "within ten minutes the set is trusted"
        );
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        *at.lock().unwrap() = now() + chrono::Duration::seconds(601);
        assert_eq!(reason(verifier.verify(&token).await), AuthFailure::UnknownKey);
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2, "re-read once");
    }
}
