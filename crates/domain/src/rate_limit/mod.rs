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
//!
//! One step may count several requests at once ([`gcra`]'s `want`): that is how
//! [`RateLimitService`] reserves a few slots of a busy client's shared budget
//! per Redis round trip (see [`service`]).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Error;

mod service;

pub use service::{LEASE_MAX, LEASE_TTL, RateLimitService};

/// A step never reserves more than this share of what is left: 1/16.
pub const RESERVE_DIVISOR: u32 = 16;

/// `limit` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// The outcome of one limiter step: the decision, and how many slots of the
/// budget the step counted (0 when refused; otherwise one for the request
/// itself plus any reserved for later requests of the same client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The decision; `remaining` is what is left after all `slots` were counted.
    pub decision: RateDecision,
    /// Slots counted, `0..=want`.
    pub slots: u32,
}

/// One GCRA step: given the stored theoretical arrival time (`tat`, µs, if
/// any) and `now` (µs), counts up to `want` (≥ 1) requests and returns the
/// grant and the new `tat` to store (`None` when a refused request leaves the
/// state unchanged).
///
/// It counts one slot, or — when `want` > 1 — up to `want` slots but never
/// more than 1/[`RESERVE_DIVISOR`] of what is available, so a reservation can
/// take only a small share of a client's budget and a client near its limit
/// is counted one request at a time. The Redis adapter's script is a line-by-
/// line copy of this function.
pub fn gcra(policy: RatePolicy, tat: Option<i64>, now: i64, want: u32) -> (Grant, Option<i64>) {
    let interval = policy.interval_micros();
    let window = policy.window_micros();
    let tat = tat.unwrap_or(now).max(now);
    let available = (now.saturating_add(window) - tat).div_euclid(interval);
    let micros = |us: i64| Duration::from_micros(u64::try_from(us.max(0)).unwrap_or(0));
    if available < 1 {
        let decision = RateDecision {
            allowed: false,
            limit: policy.limit,
            remaining: 0,
            reset_after: micros(tat - now),
            retry_after: micros(tat + interval - window - now),
        };
        return (Grant { decision, slots: 0 }, None);
    }
    let slots = (available / i64::from(RESERVE_DIVISOR)).clamp(1, i64::from(want.max(1)));
    let new_tat = tat.saturating_add(slots * interval);
    let decision = RateDecision {
        allowed: true,
        limit: policy.limit,
        remaining: u32::try_from((available - slots).clamp(0, i64::from(policy.limit))).unwrap_or(0),
        reset_after: micros(new_tat - now),
        retry_after: Duration::ZERO,
    };
    let slots = u32::try_from(slots).unwrap_or(1);
    (Grant { decision, slots }, Some(new_tat))
}

/// Counts requests per key (a client IP).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts requests for `key` under `policy` as [`gcra`] does: one for
    /// this request, up to `want` when reserving. Must be atomic: concurrent
    /// calls for one key never both take the last slot.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the shared store cannot be reached (callers
    /// fall back to an in-process limiter).
    async fn hit(&self, key: &str, policy: RatePolicy, want: u32) -> Result<Grant, Error>;
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
            let (grant, next) = gcra(POLICY, tat, now, 1);
            assert!(grant.decision.allowed);
            assert_eq!(grant.slots, 1);
            assert_eq!(grant.decision.remaining, expected_remaining);
            tat = next;
        }
        let (refused, unchanged) = gcra(POLICY, tat, now, 1);
        assert!(!refused.decision.allowed);
        assert_eq!(refused.slots, 0);
        assert_eq!(unchanged, None);
        assert_eq!(
            refused.decision.retry_after,
            Duration::from_secs(1),
            "one interval until a slot frees"
        );
        assert_eq!(refused.decision.reset_after, Duration::from_secs(3));
    }

    #[test]
    fn the_budget_refills_at_the_sustained_rate() {
        let now = 5_000_000;
        let (_, tat) = gcra(POLICY, None, now, 1);
        let (_, tat) = gcra(POLICY, tat, now, 1);
        let (_, tat) = gcra(POLICY, tat, now, 1);
        assert!(!gcra(POLICY, tat, now + 999_999, 1).0.decision.allowed);
        assert!(
            gcra(POLICY, tat, now + 1_000_000, 1).0.decision.allowed,
            "one slot after one interval"
        );
        let (fresh, _) = gcra(POLICY, tat, now + 10_000_000, 1);
        assert_eq!(fresh.decision.remaining, 2, "a long pause restores the whole budget");
    }

    #[test]
    fn a_reservation_takes_at_most_a_sixteenth_of_what_is_left_and_never_the_last_slots() {
        let policy = RatePolicy {
            limit: 1000,
            window: Duration::from_secs(1),
        };
        let now = 7_000_000;
        let (grant, tat) = gcra(policy, None, now, 50);
        assert_eq!(grant.slots, 50, "1000 / 16 = 62 allowed, 50 wanted");
        assert_eq!(grant.decision.remaining, 950);
        let (grant, _) = gcra(policy, tat, now, 100);
        assert_eq!(grant.slots, 59, "950 / 16");
        assert_eq!(grant.decision.remaining, 891);

        let small = RatePolicy {
            limit: 20,
            window: Duration::from_secs(1),
        };
        let (grant, _) = gcra(small, None, now, 64);
        assert_eq!(grant.slots, 1, "under 32 left: one at a time, exactly");
        assert_eq!(grant.decision.remaining, 19);
    }

    #[test]
    fn counting_n_slots_at_once_equals_n_single_steps() {
        let policy = RatePolicy {
            limit: 640,
            window: Duration::from_secs(64),
        };
        let now = 3_000_000;
        let (batch, batch_tat) = gcra(policy, None, now, 40);
        assert_eq!(batch.slots, 40);
        let mut tat = None;
        let mut last = None;
        for _ in 0..40 {
            let (grant, next) = gcra(policy, tat, now, 1);
            tat = next;
            last = Some(grant);
        }
        assert_eq!(tat, batch_tat);
        assert_eq!(last.map(|g| g.decision), Some(batch.decision));
    }
}
