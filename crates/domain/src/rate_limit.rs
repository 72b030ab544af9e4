//! Rate limiting as a port, and the algorithm every adapter implements.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, a.k.a. a virtual
//! leaky bucket). It was chosen over a sliding window because its whole state
//! per client is **one timestamp** (the "theoretical arrival time"), so a Redis
//! adapter can decide and update in one atomic script with one key and no
//! sorted set, and it spreads a budget of `limit` per `window` smoothly instead
//! of letting a full window's worth through at each boundary. A client may
//! burst up to `limit` requests at once and then gets one request per
//! `window / limit`.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Error;

/// `limit` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    /// Requests allowed per window (≥ 1).
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

impl RatePolicy {
    /// Microseconds between two requests at the sustained rate.
    pub fn interval_micros(&self) -> i64 {
        (self.window_micros() / i64::from(self.limit.max(1))).max(1)
    }

    /// The window in microseconds.
    pub fn window_micros(&self) -> i64 {
        i64::try_from(self.window.as_micros()).unwrap_or(i64::MAX)
    }
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The policy's limit, for `RateLimit-Limit`.
    pub limit: u32,
    /// Requests still allowed right now, for `RateLimit-Remaining`.
    pub remaining: u32,
    /// Time until the budget is whole again, for `RateLimit-Reset`.
    pub reset_after: Duration,
    /// For a refused request, when to retry (`Retry-After`).
    pub retry_after: Duration,
}

/// One GCRA step: given the stored theoretical arrival time (`tat`, µs, if
/// any) and `now` (µs), returns the decision and the new `tat` to store
/// (`None` when a refused request leaves the state unchanged).
pub fn gcra(policy: RatePolicy, tat: Option<i64>, now: i64) -> (RateDecision, Option<i64>) {
    let interval = policy.interval_micros();
    let window = policy.window_micros();
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(interval);
    let allow_at = new_tat - window;
    let micros = |us: i64| Duration::from_micros(u64::try_from(us.max(0)).unwrap_or(0));
    if now < allow_at {
        let decision = RateDecision {
            allowed: false,
            limit: policy.limit,
            remaining: 0,
            reset_after: micros(tat - now),
            retry_after: micros(allow_at - now),
        };
        return (decision, None);
    }
    let remaining = ((window - (new_tat - now)) / interval).clamp(0, i64::from(policy.limit));
    let decision = RateDecision {
        allowed: true,
        limit: policy.limit,
        remaining: u32::try_from(remaining).unwrap_or(0),
        reset_after: micros(new_tat - now),
        retry_after: Duration::ZERO,
    };
    (decision, Some(new_tat))
}

/// Counts requests per key (a client IP).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Records one request for `key` under `policy` and says whether it is allowed.
    /// Must be atomic: concurrent calls for one key never both take the last slot.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the shared store cannot be reached (callers
    /// fall back to an in-process limiter).
    async fn hit(&self, key: &str, policy: RatePolicy) -> Result<RateDecision, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RatePolicy = RatePolicy {
        limit: 3,
        window: Duration::from_secs(3),
    };

    #[test]
    fn a_burst_of_limit_requests_passes_then_the_next_is_refused() {
        let mut tat = None;
        let now = 1_000_000_000;
        for expected_remaining in [2, 1, 0] {
            let (decision, next) = gcra(POLICY, tat, now);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
            tat = next;
        }
        let (refused, unchanged) = gcra(POLICY, tat, now);
        assert!(!refused.allowed);
        assert_eq!(unchanged, None);
        assert_eq!(
            refused.retry_after,
            Duration::from_secs(1),
            "one interval until a slot frees"
        );
        assert_eq!(refused.reset_after, Duration::from_secs(3));
    }

    #[test]
    fn the_budget_refills_at_the_sustained_rate() {
        let now = 5_000_000;
        let (_, tat) = gcra(POLICY, None, now);
        let (_, tat) = gcra(POLICY, tat, now);
        let (_, tat) = gcra(POLICY, tat, now);
        assert!(!gcra(POLICY, tat, now + 999_999).0.allowed);
        assert!(
            gcra(POLICY, tat, now + 1_000_000).0.allowed,
            "one slot after one interval"
        );
        let (fresh, _) = gcra(POLICY, tat, now + 10_000_000);
        assert_eq!(fresh.remaining, 2, "a long pause restores the whole budget");
    }
}

/// The rate-limit policy for API calls: the shared limiter when there is one,
/// the in-process one when there is not or when the shared one fails.
pub struct RateLimitService {
    shared: Option<std::sync::Arc<dyn RateLimiter>>,
    local: std::sync::Arc<dyn RateLimiter>,
    policy: RatePolicy,
    warnings: crate::log_throttle::Throttle,
}

impl RateLimitService {
    /// `shared` is Redis-backed (optional); `local` is always available.
    pub fn new(
        shared: Option<std::sync::Arc<dyn RateLimiter>>,
        local: std::sync::Arc<dyn RateLimiter>,
        policy: RatePolicy,
    ) -> Self {
        Self {
            shared,
            local,
            policy,
            warnings: crate::log_throttle::Throttle::default(),
        }
    }

    /// Counts one request from `client` and decides. Never fails: a shared
    /// limiter that errors is replaced by the local one for this request (a
    /// warning is logged), so a Redis outage loosens the limit to per-instance
    /// rather than refusing or failing requests.
    pub async fn check(&self, client: &str) -> RateDecision {
        if let Some(shared) = &self.shared {
            match shared.hit(client, self.policy).await {
                Ok(decision) => return decision,
                Err(error) => {
                    if let Some(suppressed) = self.warnings.admit() {
                        tracing::warn!(error = %error, suppressed, "shared rate limiter unavailable; limiting in process");
                    }
                }
            }
        }
        match self.local.hit(client, self.policy).await {
            Ok(decision) => decision,
            Err(error) => {
                // The in-process limiter cannot fail; if one ever does, let the request through.
                tracing::error!(error = %error, "local rate limiter failed; request allowed");
                RateDecision {
                    allowed: true,
                    limit: self.policy.limit,
                    remaining: self.policy.limit,
                    reset_after: Duration::ZERO,
                    retry_after: Duration::ZERO,
                }
            }
        }
    }
}

#[cfg(test)]
mod service_tests {
    use super::*;
    use std::sync::Arc;

    const POLICY: RatePolicy = RatePolicy {
        limit: 10,
        window: Duration::from_secs(1),
    };

    fn decision(allowed: bool, remaining: u32) -> RateDecision {
        RateDecision {
            allowed,
            limit: 10,
            remaining,
            reset_after: Duration::ZERO,
            retry_after: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn the_shared_limiter_decides_when_it_answers() {
        let mut shared = MockRateLimiter::new();
        shared
            .expect_hit()
            .withf(|key, _| key == "1.2.3.4")
            .returning(|_, _| Ok(decision(false, 0)));
        let mut local = MockRateLimiter::new();
        local.expect_hit().never();
        let service = RateLimitService::new(Some(Arc::new(shared)), Arc::new(local), POLICY);
        assert!(!service.check("1.2.3.4").await.allowed);
    }

    #[tokio::test]
    async fn a_failing_shared_limiter_falls_back_to_the_local_one() {
        let mut shared = MockRateLimiter::new();
        shared
            .expect_hit()
            .returning(|_, _| Err(Error::Unavailable(anyhow::anyhow!("redis down"))));
        let mut local = MockRateLimiter::new();
        local.expect_hit().times(1).returning(|_, _| Ok(decision(true, 7)));
        let service = RateLimitService::new(Some(Arc::new(shared)), Arc::new(local), POLICY);
        assert_eq!(service.check("k").await.remaining, 7);
    }
}
