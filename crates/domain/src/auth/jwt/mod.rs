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
//!   process until its `exp`, keyed by its SHA-256, in the service's one
//!   in-process cache (the [`RememberedTokens`] port; at most
//!   [`REMEMBERED_MAX`] of them), so a client re-sending it costs a hash and
//!   a key lookup, not a signature check.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::port::{SessionStore, UserRecord};
use super::token::TokenHash;
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
/// Verified tokens remembered at most (the size to give [`RememberedTokens`]).
pub const REMEMBERED_MAX: u64 = 10_000;

mod keys;
#[cfg(test)]
mod tests;

pub use keys::{JwsAlgorithm, JwsKey, KeySource, VerificationKey};
#[cfg(any(test, feature = "mocks"))]
pub use keys::{MockJwsKey, MockKeySource};

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

/// Where verified tokens are remembered (keyed by the token's SHA-256, each
/// for the `ttl` it is stored with): in production infra's in-process TTL
/// cache, the same one that holds sessions, memberships and API keys.
pub trait RememberedTokens: Send + Sync {
    /// The token remembered under `token`, if its time has not passed.
    fn recall(&self, token: &TokenHash) -> Option<VerifiedJwt>;
    /// Remembers `verified` under `token` for `ttl`.
    fn remember(&self, token: &TokenHash, verified: &VerifiedJwt, ttl: Duration);
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
    remembered: Arc<dyn RememberedTokens>,
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
    /// A verifier of tokens signed by keys from `source`, remembering the
    /// verified ones in `remembered`.
    pub fn new(
        source: Arc<dyn KeySource>,
        clock: Arc<dyn Clock>,
        settings: JwtSettings,
        remembered: Arc<dyn RememberedTokens>,
    ) -> Self {
        Self {
            source,
            clock,
            settings,
            keys: RwLock::new(Keys::default()),
            remembered,
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
        let digest = TokenHash::of(token.as_bytes());
        let now = self.clock.now();
        if let Some(known) = self.remembered.recall(&digest) {
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
        // Until `exp` and its leeway; the re-checks above still run on every recall.
        let ttl = (verified.expires_at + chrono::Duration::seconds(LEEWAY_SECS) - now)
            .to_std()
            .unwrap_or_default();
        self.remembered.remember(&digest, &verified, ttl);
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
