//! The in-process limiter (no Redis, or Redis down): governor's keyed GCRA
//! (actix-governor's engine), one keyed limiter per policy.
//!
//! governor implements the same algorithm as [`domain::rate_limit::gcra`]
//! (a burst of `limit`, then one request per `window / limit`); the tests
//! below run both on the same sequence of requests and require the same
//! decisions. This limiter counts one request per call: reserving several
//! slots ahead only matters for the shared (Redis) budget.
//!
//! Memory: governor keeps one timestamp per client. Above [`PRUNE_ABOVE`]
//! tracked clients, those whose budget is whole again are dropped
//! (`retain_recent`); the threshold then grows with what is left, so that
//! many active clients do not make every request scan the table.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use domain::Error;
use domain::rate_limit::{Grant, RateDecision, RateLimiter, RatePolicy};
use governor::Quota;
use governor::clock::{Clock, MonotonicClock, Reference};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::state::keyed::DashMapStateStore;

/// Tracked clients above which a hit first drops the idle ones.
pub const PRUNE_ABOVE: usize = 10_000;

type Keyed<C> = governor::RateLimiter<String, DashMapStateStore<String>, C, StateInformationMiddleware>;

struct PolicyLimiter<C: Clock> {
    limiter: Keyed<C>,
    prune_above: AtomicUsize,
}

/// Per-process limiter (see the module docs).
pub struct MemoryRateLimiter<C: Clock = MonotonicClock> {
    clock: C,
    by_policy: RwLock<HashMap<RatePolicy, Arc<PolicyLimiter<C>>>>,
}

impl<C: Clock> std::fmt::Debug for MemoryRateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateLimiter").finish_non_exhaustive()
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::with_clock(MonotonicClock)
    }
}

impl MemoryRateLimiter {
    /// An empty limiter on the monotonic clock.
    pub fn new() -> Self {
        Self::default()
    }
}

fn quota(policy: RatePolicy) -> Quota {
    let interval = Duration::from_micros(u64::try_from(policy.interval_micros()).unwrap_or(1));
    let burst = NonZeroU32::new(policy.limit).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl<C: Clock + Clone> MemoryRateLimiter<C> {
    /// An empty limiter on `clock` (tests pass governor's fake clock).
    pub fn with_clock(clock: C) -> Self {
        Self {
            clock,
            by_policy: RwLock::new(HashMap::new()),
        }
    }

    fn limiter(&self, policy: RatePolicy) -> Arc<PolicyLimiter<C>> {
        if let Some(found) = self
            .by_policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&policy)
        {
            return found.clone();
        }
        let mut by_policy = self.by_policy.write().unwrap_or_else(PoisonError::into_inner);
        by_policy
            .entry(policy)
            .or_insert_with(|| {
                Arc::new(PolicyLimiter {
                    limiter:
                        governor::RateLimiter::<String, DashMapStateStore<String>, C, NoOpMiddleware<C::Instant>>::new(
                            quota(policy),
                            DashMapStateStore::default(),
                            self.clock.clone(),
                        )
                        .with_middleware::<StateInformationMiddleware>(),
                    prune_above: AtomicUsize::new(PRUNE_ABOVE),
                })
            })
            .clone()
    }

    /// Decides synchronously (the async trait method delegates here).
    pub fn hit_now(&self, key: &str, policy: RatePolicy) -> Grant {
        let entry = self.limiter(policy);
        if entry.limiter.len() > entry.prune_above.load(Ordering::Relaxed) {
            entry.limiter.retain_recent();
            entry.limiter.shrink_to_fit();
            entry
                .prune_above
                .store(PRUNE_ABOVE.max(2 * entry.limiter.len()), Ordering::Relaxed);
        }
        let interval = Duration::from_micros(u64::try_from(policy.interval_micros()).unwrap_or(1));
        let window = interval * policy.limit;
        match entry.limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(policy.limit);
                Grant {
                    decision: RateDecision {
                        allowed: true,
                        limit: policy.limit,
                        remaining,
                        reset_after: window.saturating_sub(interval * remaining),
                        retry_after: Duration::ZERO,
                    },
                    slots: 1,
                }
            }
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(self.clock.now());
                Grant {
                    decision: RateDecision {
                        allowed: false,
                        limit: policy.limit,
                        remaining: 0,
                        reset_after: retry_after + window.saturating_sub(interval),
                        retry_after,
                    },
                    slots: 0,
                }
            }
        }
    }

    /// Clients tracked under `policy` (for tests and diagnostics).
    pub fn tracked(&self, policy: RatePolicy) -> usize {
        self.limiter(policy).limiter.len()
    }
}

#[async_trait]
impl<C> RateLimiter for MemoryRateLimiter<C>
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Reference + Send + Sync,
{
    async fn hit(&self, key: &str, policy: RatePolicy, _want: u32) -> Result<Grant, Error> {
        Ok(self.hit_now(key, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::rate_limit::gcra;
    use governor::clock::FakeRelativeClock;

    const POLICY: RatePolicy = RatePolicy {
        limit: 5,
        window: Duration::from_secs(10),
    };

    #[test]
    fn each_key_has_its_own_budget() {
        let limiter = MemoryRateLimiter::new();
        let policy = RatePolicy {
            limit: 2,
            window: Duration::from_secs(60),
        };
        assert!(limiter.hit_now("a", policy).decision.allowed);
        assert!(limiter.hit_now("a", policy).decision.allowed);
        assert!(!limiter.hit_now("a", policy).decision.allowed);
        assert!(limiter.hit_now("b", policy).decision.allowed);
    }

    /// governor and the domain's GCRA (which the Redis script copies line
    /// for line) decide a long irregular sequence of requests identically.
    #[test]
    fn governor_and_the_domain_gcra_make_the_same_decisions() {
        let clock = FakeRelativeClock::default();
        let limiter = MemoryRateLimiter::with_clock(clock.clone());
        let mut tat = None;
        let mut now_us: i64 = 0;
        // Gaps in ms: bursts, pauses shorter and longer than the interval (2 s).
        let gaps: [u64; 24] = [
            0, 0, 0, 0, 0, 0, 0, 100, 1900, 0, 0, 2500, 10, 4000, 0, 0, 0, 0, 0, 0, 9000, 1, 1999, 2001,
        ];
        for (step, gap) in gaps.iter().cycle().take(200).enumerate() {
            clock.advance(Duration::from_millis(*gap));
            now_us += i64::try_from(gap * 1000).unwrap();
            let (expected, new_tat) = gcra(POLICY, tat, now_us, 1);
            if new_tat.is_some() {
                tat = new_tat;
            }
            let got = limiter.hit_now("client", POLICY).decision;
            let want = expected.decision;
            assert_eq!(got.allowed, want.allowed, "step {step}");
            assert_eq!(got.remaining, want.remaining, "step {step}");
            assert_eq!(got.retry_after.as_millis(), want.retry_after.as_millis(), "step {step}");
            // governor does not expose its arrival time, so the time until the
            // budget is whole is derived from `remaining`: never shorter than
            // the exact value, and less than one interval (2 s) longer.
            assert!(
                got.reset_after >= want.reset_after && got.reset_after < want.reset_after + Duration::from_secs(2),
                "step {step}: {:?} vs {:?}",
                got.reset_after,
                want.reset_after
            );
        }
    }

    #[test]
    fn idle_clients_are_pruned_and_limited_ones_kept() {
        let clock = FakeRelativeClock::default();
        let limiter = MemoryRateLimiter::with_clock(clock.clone());
        let policy = RatePolicy {
            limit: 1,
            window: Duration::from_secs(60),
        };
        for client in 0..=PRUNE_ABOVE {
            assert!(limiter.hit_now(&client.to_string(), policy).decision.allowed);
        }
        // governor forgets a client one interval after its budget is whole again.
        clock.advance(Duration::from_secs(121));
        assert!(limiter.hit_now("limited", policy).decision.allowed, "this hit prunes");
        assert_eq!(limiter.tracked(policy), 1, "only the client still limited is kept");
        assert!(!limiter.hit_now("limited", policy).decision.allowed);
    }
}
