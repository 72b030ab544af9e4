//! The authentication policy: which credentials are accepted, in which order
//! the cache and the database are asked, and how long an answer may be reused.
//!
//! Trust model: the session cookie is only believed when its HMAC verifies
//! against `BETTER_AUTH_SECRET`; the session row is the source of truth. The
//! cache may serve a session for at most `min(cache_ttl, expiresAt - now)`, so
//! a session deleted by sign-out stops working within `cache_ttl` at the latest.
//! A cache failure is never fatal: it is logged and the database answers.
//!
//! Besides sessions, every other better-auth credential: a bearer value
//! shaped as a JWS is a JWT of the jwt plugin ([`super::jwt`]), and an API
//! key of the api-key plugin ([`super::api_key`]) arrives in its own header.

use std::sync::Arc;
use std::time::Duration;

use super::api_key::ApiKeyService;
use super::jwt::{JwtVerifier, looks_like_jwt};
use super::port::{Authenticated, CachedSession, CredentialKind, SessionCache, SessionStore};
use super::token::{SessionToken, SignatureVerifier};
use crate::clock::Clock;
use crate::error::{AuthFailure, Error};
use crate::revocation::{Mark, Revocations};

/// A credential as the client presented it.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// The value of the `session_token` cookie (signed, possibly percent-encoded).
    Cookie(&'a str),
    /// The value after `Authorization: Bearer ` (a session token or a JWT).
    Bearer(&'a str),
    /// The value of the API-key header.
    ApiKey(&'a str),
}

/// Tunables of [`AuthService`].
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Upper bound on how long a validated session is reused without asking the database.
    pub cache_ttl: Duration,
    /// Refuse bare bearer tokens (better-auth's bearer plugin `requireSignature`).
    pub require_signed_bearer: bool,
}

/// Turns a credential into the signed-in [`User`].
pub struct AuthService {
    verifier: SignatureVerifier,
    store: Arc<dyn SessionStore>,
    cache: Arc<dyn SessionCache>,
    clock: Arc<dyn Clock>,
    settings: AuthSettings,
    cache_warnings: crate::log_throttle::Throttle,
    jwt: Option<Arc<JwtVerifier>>,
    api_keys: Option<Arc<ApiKeyService>>,
    revocations: Arc<Revocations>,
}

impl AuthService {
    /// Wires the service to its ports.
    pub fn new(
        verifier: SignatureVerifier,
        store: Arc<dyn SessionStore>,
        cache: Arc<dyn SessionCache>,
        clock: Arc<dyn Clock>,
        settings: AuthSettings,
    ) -> Self {
        Self {
            verifier,
            store,
            cache,
            clock,
            settings,
            cache_warnings: crate::log_throttle::Throttle::default(),
            jwt: None,
            api_keys: None,
            revocations: Arc::default(),
        }
    }

    /// Trusts a cached session only if no change concerning it (or its user)
    /// arrived since it was cached.
    #[must_use]
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = revocations;
        self
    }

    /// Accepts JWTs of better-auth's jwt plugin, verified by `jwt`.
    #[must_use]
    pub fn with_jwt(mut self, jwt: Arc<JwtVerifier>) -> Self {
        self.jwt = Some(jwt);
        self
    }

    /// Accepts API keys of better-auth's api-key plugin.
    #[must_use]
    pub fn with_api_keys(mut self, api_keys: Arc<ApiKeyService>) -> Self {
        self.api_keys = Some(api_keys);
        self
    }

    /// Authenticates a request: a JWT-shaped bearer value as a JWT, an API
    /// key as one, anything else as a session.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] with the reason for any refused credential;
    /// [`Error::TooManyRequests`] for an API key past its rate limit or
    /// `remaining`; [`Error::Unavailable`] when storage cannot be reached.
    pub async fn authenticate(&self, credential: Credential<'_>) -> Result<Authenticated, Error> {
        self.authenticate_for(credential, None).await
    }

    /// As [`Self::authenticate`], for a request that needs `access`: an API
    /// key whose permissions do not allow it is refused (403) before it is
    /// metered. Other credentials carry the user's full rights.
    ///
    /// # Errors
    /// As [`Self::authenticate`], and [`Error::Forbidden`] for such a key.
    pub async fn authenticate_for(
        &self,
        credential: Credential<'_>,
        access: Option<super::api_key::Access<'_>>,
    ) -> Result<Authenticated, Error> {
        match credential {
            Credential::Bearer(value) if looks_like_jwt(value) => {
                let jwt = self
                    .jwt
                    .as_ref()
                    .ok_or(Error::Unauthenticated(AuthFailure::Malformed))?;
                let verified = jwt.verify(value).await?;
                Ok(Authenticated {
                    user: verified.user,
                    active_organization_id: None,
                    credential: CredentialKind::Jwt,
                    permissions: None,
                })
            }
            Credential::ApiKey(raw) => {
                let keys = self
                    .api_keys
                    .as_ref()
                    .ok_or(Error::Unauthenticated(AuthFailure::UnknownApiKey))?;
                let identity = keys.authenticate_for(raw, access).await?;
                Ok(Authenticated {
                    user: identity.user,
                    active_organization_id: None,
                    credential: CredentialKind::ApiKey,
                    permissions: identity.permissions,
                })
            }
            Credential::Cookie(_) => self.session(credential, CredentialKind::Cookie).await,
            Credential::Bearer(_) => self.session(credential, CredentialKind::Bearer).await,
        }
    }

    /// A better-auth session (cookie or bearer token): cache, then database.
    async fn session(&self, credential: Credential<'_>, kind: CredentialKind) -> Result<Authenticated, Error> {
        let token = self.token_of(credential).map_err(Error::Unauthenticated)?;
        let key = token.hash();
        let now = self.clock.now();

        match self.cache.get(&key).await {
            Ok(Some(hit))
                if hit.expires_at > now
                    && self
                        .revocations
                        .trusts(hit.cached_at, &[Mark::Session(key.as_str()), Mark::User(&hit.user.id)]) =>
            {
                return Ok(Authenticated {
                    user: hit.user,
                    active_organization_id: hit.active_organization_id,
                    credential: kind,
                    permissions: None,
                });
            }
            Ok(_) => {}
            Err(error) => {
                if let Some(suppressed) = self.cache_warnings.admit() {
                    tracing::warn!(error = %error, suppressed, "session cache unavailable; asking the database");
                }
            }
        }

        let record = self
            .store
            .find_by_token(&token)
            .await?
            .ok_or(Error::Unauthenticated(AuthFailure::UnknownSession))?;
        if record.expires_at <= now {
            return Err(Error::Unauthenticated(AuthFailure::Expired));
        }
        if record.revocation.revoked() {
            return Err(Error::Unauthenticated(AuthFailure::Revoked));
        }
        if record.banned && record.ban_expires.is_none_or(|until| until > now) {
            return Err(Error::Unauthenticated(AuthFailure::Banned));
        }

        let remaining = (record.expires_at - now).to_std().unwrap_or_default();
        let ttl = remaining.min(self.settings.cache_ttl);
        if !ttl.is_zero() {
            let entry = CachedSession {
                user: record.user,
                expires_at: record.expires_at,
                active_organization_id: record.active_organization_id,
                cached_at: now,
            };
            if let Err(error) = self.cache.put(&key, &entry, ttl).await
                && let Some(suppressed) = self.cache_warnings.admit()
            {
                tracing::warn!(error = %error, suppressed, "could not cache the session");
            }
            return Ok(Authenticated {
                user: entry.user,
                active_organization_id: entry.active_organization_id,
                credential: kind,
                permissions: None,
            });
        }
        Ok(Authenticated {
            user: record.user,
            active_organization_id: record.active_organization_id,
            credential: kind,
            permissions: None,
        })
    }

    fn token_of(&self, credential: Credential<'_>) -> Result<SessionToken, AuthFailure> {
        match credential {
            Credential::Cookie(value) => self.verifier.verify(value),
            // better-auth's bearer plugin: a value with a dot is a signed
            // cookie value; a bare token is trusted unless signatures are required.
            Credential::Bearer(value) if value.contains('.') => self.verifier.verify(value),
            Credential::Bearer(_) if self.settings.require_signed_bearer => Err(AuthFailure::UnsignedBearer),
            Credential::Bearer(value) => SessionToken::parse(value),
            Credential::ApiKey(_) => Err(AuthFailure::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::port::{MockSessionCache, MockSessionStore, SessionRecord};
    use crate::clock::MockClock;
    use crate::user::User;
    use chrono::{DateTime, TimeZone, Utc};
    use mockall::predicate::always;

    const SECRET: &str = "a-secret-of-at-least-thirty-two-bytes!!";
    const TOKEN: &str = "0123456789abcdefghijABCDEFGHIJkl";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn user() -> User {
        User::ada(now())
    }

    fn record(expires_in_secs: i64) -> SessionRecord {
        SessionRecord {
            user: user(),
            expires_at: now() + chrono::Duration::seconds(expires_in_secs),
            banned: false,
            ban_expires: None,
            active_organization_id: None,
            revocation: crate::auth::port::SessionRevocation::Row,
        }
    }

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        Arc::new(clock)
    }

    fn service(store: MockSessionStore, cache: MockSessionCache, require_signed_bearer: bool) -> AuthService {
        AuthService::new(
            SignatureVerifier::new(&[SECRET]),
            Arc::new(store),
            Arc::new(cache),
            clock(),
            AuthSettings {
                cache_ttl: Duration::from_secs(300),
                require_signed_bearer,
            },
        )
    }

    fn cookie() -> String {
        SignatureVerifier::new(&[SECRET]).signed_cookie_value(TOKEN).unwrap()
    }

    fn empty_cache() -> MockSessionCache {
        let mut cache = MockSessionCache::new();
        cache.expect_get().returning(|_| Ok(None));
        cache
    }

    #[tokio::test]
    async fn a_cache_hit_answers_without_the_database() {
        let mut cache = MockSessionCache::new();
        let expected_key = SessionToken::parse(TOKEN).unwrap().hash();
        cache
            .expect_get()
            .withf(move |key| *key == expected_key)
            .returning(|_| {
                Ok(Some(CachedSession {
                    user: user(),
                    expires_at: now() + chrono::Duration::hours(1),
                    active_organization_id: None,
                    cached_at: now(),
                }))
            });
        let mut store = MockSessionStore::new();
        store.expect_find_by_token().never();
        let got = service(store, cache, false)
            .authenticate(Credential::Cookie(&cookie()))
            .await
            .unwrap();
        assert_eq!(got.user, user());
    }

    #[tokio::test]
    async fn a_miss_asks_the_database_and_caches_for_the_configured_ttl() {
        let mut store = MockSessionStore::new();
        store
            .expect_find_by_token()
            .withf(|t| t.expose() == TOKEN)
            .times(1)
            .returning(|_| Ok(Some(record(3600))));
        let mut cache = empty_cache();
        cache
            .expect_put()
            .withf(|_, entry, ttl| entry.user == user() && *ttl == Duration::from_secs(300))
            .times(1)
            .returning(|_, _, _| Ok(()));
        let got = service(store, cache, false)
            .authenticate(Credential::Cookie(&cookie()))
            .await
            .unwrap();
        assert_eq!(got.user.id, "user-1");
    }

    #[tokio::test]
    async fn a_session_about_to_expire_is_cached_only_until_it_expires() {
        let mut store = MockSessionStore::new();
        store.expect_find_by_token().returning(|_| Ok(Some(record(42))));
        let mut cache = empty_cache();
        cache
            .expect_put()
            .withf(|_, _, ttl| *ttl == Duration::from_secs(42))
            .times(1)
            .returning(|_, _, _| Ok(()));
        service(store, cache, false)
            .authenticate(Credential::Cookie(&cookie()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_expired_cache_entry_is_ignored() {
        let mut cache = MockSessionCache::new();
        cache.expect_get().returning(|_| {
            Ok(Some(CachedSession {
                user: user(),
                expires_at: now() - chrono::Duration::seconds(1),
                active_organization_id: None,
                cached_at: now(),
            }))
        });
        cache.expect_put().never();
        let mut store = MockSessionStore::new();
        store
            .expect_find_by_token()
            .times(1)
            .returning(|_| Ok(Some(record(-1))));
        let err = service(store, cache, false)
            .authenticate(Credential::Cookie(&cookie()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(AuthFailure::Expired)), "{err:?}");
    }

    #[tokio::test]
    async fn an_unknown_session_is_refused() {
        let mut store = MockSessionStore::new();
        store.expect_find_by_token().returning(|_| Ok(None));
        let err = service(store, empty_cache(), false)
            .authenticate(Credential::Cookie(&cookie()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(AuthFailure::UnknownSession)));
    }

    #[tokio::test]
    async fn a_secondary_storage_session_created_before_the_users_revocation_mark_is_refused() {
        use crate::auth::port::SessionRevocation;
        let created = now() - chrono::Duration::hours(1);
        for (revoked_before, refused) in [
            (None, false),
            (Some(created - chrono::Duration::milliseconds(1)), false),
            // better-auth: `createdAt < revokedBefore`, so the same instant survives.
            (Some(created), false),
            (Some(created + chrono::Duration::milliseconds(1)), true),
        ] {
            let mut store = MockSessionStore::new();
            store.expect_find_by_token().returning(move |_| {
                Ok(Some(SessionRecord {
                    revocation: SessionRevocation::SecondaryStorage {
                        created_at: created,
                        revoked_before,
                    },
                    ..record(3600)
                }))
            });
            let mut cache = empty_cache();
            cache.expect_put().returning(|_, _, _| Ok(()));
            let result = service(store, cache, false)
                .authenticate(Credential::Cookie(&cookie()))
                .await;
            assert_eq!(
                matches!(result, Err(Error::Unauthenticated(AuthFailure::Revoked))),
                refused,
                "revoked before {revoked_before:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_banned_user_is_refused_until_the_ban_expires() {
        for (ban_expires, refused) in [
            (None, true),
            (Some(now() + chrono::Duration::days(1)), true),
            (Some(now() - chrono::Duration::days(1)), false),
        ] {
            let mut store = MockSessionStore::new();
            store.expect_find_by_token().returning(move |_| {
                Ok(Some(SessionRecord {
                    banned: true,
                    ban_expires,
                    ..record(3600)
                }))
            });
            let mut cache = empty_cache();
            cache.expect_put().returning(|_, _, _| Ok(()));
            let result = service(store, cache, false)
                .authenticate(Credential::Cookie(&cookie()))
                .await;
            assert_eq!(
                matches!(result, Err(Error::Unauthenticated(AuthFailure::Banned))),
                refused,
                "ban_expires = {ban_expires:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_forged_cookie_never_reaches_the_cache_or_the_database() {
        let mut store = MockSessionStore::new();
        store.expect_find_by_token().never();
        let mut cache = MockSessionCache::new();
        cache.expect_get().never();
        let forged = SignatureVerifier::new(&["not-the-secret-not-the-secret-not-the"])
            .signed_cookie_value(TOKEN)
            .unwrap();
        let err = service(store, cache, false)
            .authenticate(Credential::Cookie(&forged))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(AuthFailure::BadSignature)));
    }

    #[tokio::test]
    async fn an_unsigned_cookie_is_refused() {
        let mut store = MockSessionStore::new();
        store.expect_find_by_token().never();
        let err = service(store, MockSessionCache::new(), false)
            .authenticate(Credential::Cookie(TOKEN))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(AuthFailure::Malformed)));
    }

    #[tokio::test]
    async fn a_bare_bearer_token_is_accepted_unless_signatures_are_required() {
        let mut store = MockSessionStore::new();
        store
            .expect_find_by_token()
            .times(1)
            .returning(|_| Ok(Some(record(3600))));
        let mut cache = empty_cache();
        cache.expect_put().returning(|_, _, _| Ok(()));
        service(store, cache, false)
            .authenticate(Credential::Bearer(TOKEN))
            .await
            .unwrap();

        let mut store = MockSessionStore::new();
        store.expect_find_by_token().never();
        let err = service(store, MockSessionCache::new(), true)
            .authenticate(Credential::Bearer(TOKEN))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated(AuthFailure::UnsignedBearer)));
    }

    #[tokio::test]
    async fn a_signed_bearer_value_is_verified_like_a_cookie() {
        let mut store = MockSessionStore::new();
        store
            .expect_find_by_token()
            .times(1)
            .returning(|_| Ok(Some(record(3600))));
        let mut cache = empty_cache();
        cache.expect_put().returning(|_, _, _| Ok(()));
        service(store, cache, true)
            .authenticate(Credential::Bearer(&cookie()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_cache_outage_falls_back_to_the_database() {
        let mut cache = MockSessionCache::new();
        cache
            .expect_get()
            .returning(|_| Err(Error::Unavailable(anyhow::anyhow!("redis down"))));
        cache
            .expect_put()
            .with(always(), always(), always())
            .returning(|_, _, _| Err(Error::Unavailable(anyhow::anyhow!("redis down"))));
        let mut store = MockSessionStore::new();
        store
            .expect_find_by_token()
            .times(1)
            .returning(|_| Ok(Some(record(3600))));
        let got = service(store, cache, false)
            .authenticate(Credential::Cookie(&cookie()))
            .await
            .unwrap();
        assert_eq!(got.user, user());
    }

    #[tokio::test]
    async fn a_database_outage_is_unavailable_not_unauthenticated() {
        let mut store = MockSessionStore::new();
        store
            .expect_find_by_token()
            .returning(|_| Err(Error::Unavailable(anyhow::anyhow!("pg down"))));
        let err = service(store, empty_cache(), false)
            .authenticate(Credential::Cookie(&cookie()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)));
    }

    #[tokio::test]
    async fn jwts_and_api_keys_are_refused_without_asking_for_sessions_when_not_set_up() {
        let mut store = MockSessionStore::new();
        store.expect_find_by_token().never();
        let mut cache = MockSessionCache::new();
        cache.expect_get().never();
        let service = service(store, cache, false);
        let jwt = service.authenticate(Credential::Bearer("eyJh.eyJz.c2ln")).await;
        assert!(
            matches!(jwt, Err(Error::Unauthenticated(AuthFailure::Malformed))),
            "{jwt:?}"
        );
        let key = service.authenticate(Credential::ApiKey("raw")).await;
        assert!(
            matches!(key, Err(Error::Unauthenticated(AuthFailure::UnknownApiKey))),
            "{key:?}"
        );
    }
}
