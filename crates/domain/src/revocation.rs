//! What the service has been told since it cached something: better-auth's
//! changes (a sign-out, a ban, a removed member, a disabled API key …),
//! received from the database by an adapter (PostgreSQL `LISTEN`, see
//! `infra::auth_changes`), and the moments the adapter could not listen.
//!
//! Caches are not purged entry by entry — a first level lives in every worker
//! thread and a second in Redis, shared by instances — but every cached
//! decision carries when it was made, and a service trusts a cache hit only
//! if it was made after every mark that concerns it:
//!
//! - a [`Mark`] per changed subject (one session, every session and token of
//!   a user, one membership, a whole organization, one API key);
//! - an epoch before which nothing is trusted at all: set when the listener
//!   loses its connection (notifications sent meanwhile are lost for good)
//!   and again once it listens anew, and when the marks outgrow their cap.
//!
//! Marks are placed [`SKEW`] in the future: another instance's clock may run
//! a little ahead, and a request that read the database just before the
//! change may store its answer just after the mark. Entries older than the
//! longest a cache keeps anything ([`Revocations::new`]'s `horizon`) cannot
//! exist any more, so older marks are dropped.
//!
//! Without a listener nothing is ever marked and every check is one atomic
//! load: the caches' TTLs are then the only bound, as before.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How far in the future a mark is placed (clock skew between instances,
/// and a database read racing the change).
pub const SKEW: Duration = Duration::from_secs(1);
/// Marks kept at most; beyond, everything is distrusted once and they are cleared.
pub const MAX_MARKS: usize = 100_000;

/// A subject whose cached decisions a change makes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark<'a> {
    /// One session, by the hex SHA-256 of its token.
    Session(&'a str),
    /// Every session, JWT, API key and membership of a user.
    User(&'a str),
    /// One membership: (organization, user).
    Member(&'a str, &'a str),
    /// Every membership of an organization.
    Organization(&'a str),
    /// One API key, by its stored hash.
    ApiKey(&'a str),
}

impl Mark<'_> {
    /// A fixed-width key: lookups allocate nothing. Two subjects sharing a
    /// key (a 64-bit collision) only make a hit be re-checked.
    fn key(&self, hasher: &std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>) -> u64 {
        let mut h = hasher.build_hasher();
        match self {
            Self::Session(hash) => (0u8, hash).hash(&mut h),
            Self::User(id) => (1u8, id).hash(&mut h),
            Self::Member(organization, user) => (2u8, organization, user).hash(&mut h),
            Self::Organization(id) => (3u8, id).hash(&mut h),
            Self::ApiKey(hash) => (4u8, hash).hash(&mut h),
        }
        h.finish()
    }
}

/// The marks and the epoch (see the module docs).
#[derive(Debug)]
pub struct Revocations {
    /// Nothing cached at or before this instant (µs since the epoch) is trusted.
    epoch: AtomicI64,
    /// Number of marks, read without the lock on the hot path.
    count: AtomicU64,
    /// Cache hits refused since start (for metrics: the cost of the marks).
    distrusted: AtomicU64,
    marks: RwLock<HashMap<u64, DateTime<Utc>>>,
    horizon: chrono::Duration,
    hasher: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new(Duration::from_secs(300))
    }
}

impl Revocations {
    /// Marks are kept for `horizon`: the longest any cache keeps an entry.
    pub fn new(horizon: Duration) -> Self {
        Self {
            epoch: AtomicI64::new(i64::MIN),
            count: AtomicU64::new(0),
            distrusted: AtomicU64::new(0),
            marks: RwLock::new(HashMap::new()),
            horizon: chrono::Duration::from_std(horizon + SKEW).unwrap_or(chrono::Duration::MAX),
            hasher: std::hash::BuildHasherDefault::default(),
        }
    }

    /// Whether a decision cached at `cached_at` about `subjects` may still be used.
    pub fn trusts(&self, cached_at: DateTime<Utc>, subjects: &[Mark<'_>]) -> bool {
        let trusted = self.check(cached_at, subjects);
        if !trusted {
            self.distrusted.fetch_add(1, Ordering::Relaxed);
        }
        trusted
    }

    fn check(&self, cached_at: DateTime<Utc>, subjects: &[Mark<'_>]) -> bool {
        if cached_at.timestamp_micros() <= self.epoch.load(Ordering::Acquire) {
            return false;
        }
        if self.count.load(Ordering::Acquire) == 0 {
            return true;
        }
        let marks = self.marks.read().unwrap_or_else(PoisonError::into_inner);
        subjects
            .iter()
            .all(|subject| marks.get(&subject.key(&self.hasher)).is_none_or(|at| cached_at > *at))
    }

    /// Cache hits not trusted since start: each cost a database read.
    pub fn distrusted(&self) -> u64 {
        self.distrusted.load(Ordering::Relaxed)
    }

    /// Decisions cached about `subjects` until shortly after `now` are stale.
    pub fn revoke(&self, subjects: &[Mark<'_>], now: DateTime<Utc>) {
        let until = now + chrono::Duration::from_std(SKEW).unwrap_or_default();
        let mut marks = self.marks.write().unwrap_or_else(PoisonError::into_inner);
        if marks.len() + subjects.len() > MAX_MARKS {
            let oldest_cacheable = now - self.horizon;
            marks.retain(|_, at| *at > oldest_cacheable);
            if marks.len() + subjects.len() > MAX_MARKS {
                marks.clear();
                self.epoch.fetch_max(until.timestamp_micros(), Ordering::AcqRel);
            }
        }
        for subject in subjects {
            let at = marks.entry(subject.key(&self.hasher)).or_insert(until);
            *at = (*at).max(until);
        }
        self.count.store(marks.len() as u64, Ordering::Release);
    }

    /// Nothing cached until shortly after `now` is trusted (notifications
    /// may have been lost, or everything changed).
    pub fn distrust_all(&self, now: DateTime<Utc>) {
        let until = now + chrono::Duration::from_std(SKEW).unwrap_or_default();
        self.epoch.fetch_max(until.timestamp_micros(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    #[test]
    fn nothing_marked_trusts_everything() {
        let r = Revocations::default();
        assert!(r.trusts(at(0), &[Mark::User("u"), Mark::Session("h")]));
    }

    #[test]
    fn a_mark_distrusts_what_was_cached_before_it_and_until_the_skew_after() {
        let r = Revocations::default();
        r.revoke(&[Mark::User("u")], at(10));
        assert!(!r.trusts(at(5), &[Mark::Session("h"), Mark::User("u")]));
        assert!(!r.trusts(at(10), &[Mark::User("u")]), "cached as the change arrived");
        assert_eq!(r.distrusted(), 2, "each refused hit is counted");
        assert!(
            r.trusts(at(12), &[Mark::User("u")]),
            "cached after the mark and its skew"
        );
        assert!(r.trusts(at(5), &[Mark::User("other")]), "another user is untouched");
        assert!(r.trusts(at(5), &[Mark::Member("o", "u")]), "kinds do not mix");
    }

    #[test]
    fn each_kind_of_subject_is_its_own() {
        let r = Revocations::default();
        r.revoke(
            &[Mark::Member("o", "u"), Mark::Organization("x"), Mark::ApiKey("k")],
            at(10),
        );
        assert!(!r.trusts(at(5), &[Mark::Member("o", "u")]));
        assert!(r.trusts(at(5), &[Mark::Member("u", "o")]));
        assert!(!r.trusts(at(5), &[Mark::Member("y", "z"), Mark::Organization("x")]));
        assert!(!r.trusts(at(5), &[Mark::ApiKey("k")]));
        assert!(r.trusts(at(5), &[Mark::Session("k")]));
    }

    #[test]
    fn distrusting_all_covers_every_subject() {
        let r = Revocations::default();
        r.distrust_all(at(10));
        assert!(!r.trusts(at(10), &[]));
        assert!(r.trusts(at(12), &[Mark::User("u")]));
        r.distrust_all(at(0));
        assert!(!r.trusts(at(10), &[]), "the epoch never moves back");
    }

    #[test]
    fn a_thousand_times_too_many_marks_stay_bounded_and_stay_safe() {
        let r = Revocations::new(Duration::from_secs(300));
        let ids: Vec<String> = (0..MAX_MARKS * 2).map(|i| format!("user-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            r.revoke(&[Mark::User(id)], at(i64::try_from(i / 1000).unwrap()));
        }
        assert!(r.marks.read().unwrap().len() <= MAX_MARKS);
        // Whatever was dropped, nothing cached before its mark is trusted.
        assert!(!r.trusts(at(0), &[Mark::User(&ids[0])]));
        assert!(!r.trusts(at(0), &[Mark::User(&ids[ids.len() - 1])]));
    }
}
