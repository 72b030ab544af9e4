//! better-auth's changes, as PostgreSQL tells them: installs the triggers of
//! `migration::auth_changes` (idempotently, at every start, so plugin tables
//! created later get theirs) and `LISTEN`s on a connection of its own,
//! turning each notification into marks on the domain's
//! [`Revocations`] (and a re-read of the JWT keys for `jwks` changes).
//!
//! A lost connection is noticed by the listener at once (the socket closes);
//! from then on nothing cached before is trusted, and once it listens again
//! nothing cached meanwhile is either (PostgreSQL does not replay what it
//! sent while nobody listened). It reconnects with a backoff of 100 ms
//! doubling to 5 s. [`ListenerStatus`] says whether changes are being
//! received, for `/health` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use domain::auth::jwt::JwtVerifier;
use domain::clock::Clock;
use domain::revocation::{Mark, Revocations};
use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use serde::Deserialize;

use crate::db::{Db, DbBackendKind};

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether the listener is receiving changes, and how many it applied.
#[derive(Debug, Default)]
pub struct ListenerStatus {
    listening: AtomicBool,
    received: AtomicU64,
    reconnects: AtomicU64,
}

impl ListenerStatus {
    /// True while a `LISTEN` is in place.
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Notifications applied since start.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Times the connection was lost and made again.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }
}

/// Why the triggers could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("could not install the auth-change triggers: {0}")]
pub struct InstallError(String);

/// Installs (or refreshes) the function and triggers. A no-op on SQLite.
///
/// # Errors
/// When PostgreSQL refuses (typically: the service's role does not own
/// better-auth's tables).
pub async fn install(db: &Db) -> Result<(), InstallError> {
    if db.kind() != DbBackendKind::Postgres {
        return Ok(());
    }
    db.execute_unprepared(migration::auth_changes::INSTALL)
        .await
        .map(|_| ())
        .map_err(|error| InstallError(format!("{error:#}")))
}

/// What a trigger sends (see `migration::auth_changes`).
#[derive(Debug, Deserialize)]
struct Payload {
    t: String,
    #[serde(default)]
    h: Option<String>,
    #[serde(default)]
    u: Option<String>,
    #[serde(default)]
    o: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// Where the changes go.
#[derive(Clone)]
pub struct Targets {
    /// Marks for the caches.
    pub revocations: Arc<Revocations>,
    /// Re-read on `jwks` changes.
    pub jwt: Option<Arc<JwtVerifier>>,
    /// Dates the marks.
    pub clock: Arc<dyn Clock>,
}

impl Targets {
    /// Applies one notification; anything unreadable distrusts everything.
    fn apply(&self, raw: &str) {
        let now = self.clock.now();
        let Ok(payload) = serde_json::from_str::<Payload>(raw) else {
            tracing::warn!(
                payload_bytes = raw.len(),
                "unreadable auth-change notification; distrusting every cache"
            );
            self.revocations.distrust_all(now);
            return;
        };
        let field = |value: &Option<String>| value.as_deref().unwrap_or_default().to_owned();
        let (h, u, o, id) = (
            field(&payload.h),
            field(&payload.u),
            field(&payload.o),
            field(&payload.id),
        );
        match payload.t.as_str() {
            "s" => self.revocations.revoke(&[Mark::Session(&h)], now),
            "u" => self.revocations.revoke(&[Mark::User(&id)], now),
            "m" => self.revocations.revoke(&[Mark::Member(&o, &u)], now),
            "o" => self.revocations.revoke(&[Mark::Organization(&id)], now),
            "k" => self.revocations.revoke(&[Mark::ApiKey(&h)], now),
            "j" => {
                if let Some(jwt) = &self.jwt {
                    jwt.invalidate_keys();
                }
            }
            _ => self.revocations.distrust_all(now),
        }
    }
}

/// Starts listening in the background on a connection of its own (not one
/// of the pool's). `None` on SQLite.
pub fn spawn(db: &Db, targets: Targets) -> Option<Arc<ListenerStatus>> {
    if db.kind() != DbBackendKind::Postgres {
        return None;
    }
    let options = db
        .conn()
        .get_postgres_connection_pool()
        .connect_options()
        .as_ref()
        .clone();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    let status = Arc::new(ListenerStatus::default());
    tokio::spawn(run(pool, targets, status.clone()));
    Some(status)
}

async fn run(pool: sea_orm::sqlx::PgPool, targets: Targets, status: Arc<ListenerStatus>) {
    let mut backoff = Duration::from_millis(100);
    let mut ever = false;
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(migration::auth_changes::CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        };
        let mut listener = match listener.await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis(), "auth-change listener cannot listen; cached credentials are trusted for SESSION_CACHE_TTL meanwhile");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        // Whatever was cached before now may have missed a notification.
        targets.revocations.distrust_all(targets.clock.now());
        status.listening.store(true, Ordering::Release);
        if ever {
            status.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("auth-change listener listening again");
        } else {
            tracing::info!(
                channel = migration::auth_changes::CHANNEL,
                "auth-change listener listening"
            );
        }
        ever = true;
        backoff = Duration::from_millis(100);
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    targets.apply(notification.payload());
                    status.received.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(error = %error, "auth-change listener failed");
                    break;
                }
            }
        }
        status.listening.store(false, Ordering::Release);
        targets.revocations.distrust_all(targets.clock.now());
        tracing::warn!(
            "auth-change listener lost its connection; nothing cached before is trusted until it listens again"
        );
        drop(listener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    struct FixedClock;

    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            at(10)
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    fn targets() -> Targets {
        Targets {
            revocations: Arc::new(Revocations::default()),
            jwt: None,
            clock: Arc::new(FixedClock),
        }
    }

    #[test]
    fn each_payload_marks_its_subject_only() {
        let t = targets();
        t.apply(r#"{"t":"s","h":"abc","u":"u1"}"#);
        t.apply(r#"{"t":"u","id":"u2"}"#);
        t.apply(r#"{"t":"m","o":"o1","u":"u3"}"#);
        t.apply(r#"{"t":"o","id":"o2"}"#);
        t.apply(r#"{"t":"k","h":"key","u":"u4"}"#);
        let r = &t.revocations;
        for stale in [
            Mark::Session("abc"),
            Mark::User("u2"),
            Mark::Member("o1", "u3"),
            Mark::Organization("o2"),
            Mark::ApiKey("key"),
        ] {
            assert!(!r.trusts(at(5), &[stale]), "{stale:?}");
        }
        for fresh in [
            Mark::User("u1"),
            Mark::User("u3"),
            Mark::Member("o2", "u1"),
            Mark::Session("key"),
        ] {
            assert!(r.trusts(at(5), &[fresh]), "{fresh:?}");
        }
    }

    #[test]
    fn an_unreadable_or_oversized_payload_distrusts_everything() {
        for raw in ["not json", r#"{"t":"all"}"#, r#"{"x":1}"#] {
            let t = targets();
            t.apply(raw);
            assert!(!t.revocations.trusts(at(5), &[]), "{raw}");
        }
    }
}
