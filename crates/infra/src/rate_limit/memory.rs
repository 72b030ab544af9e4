//! GCRA in process memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use domain::Error;
use domain::rate_limit::{RateDecision, RateLimiter, RatePolicy, gcra};

/// Above this many tracked clients, entries whose budget is whole again are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// Per-process limiter: one theoretical arrival time per key behind a mutex
/// (the critical section is a few arithmetic operations).
#[derive(Debug)]
pub struct MemoryRateLimiter {
    origin: Instant,
    state: Mutex<HashMap<String, i64>>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            state: Mutex::new(HashMap::new()),
        }
    }
}

impl MemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn now_micros(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_micros()).unwrap_or(i64::MAX)
    }

    /// Decides synchronously (the async trait method delegates here).
    pub fn hit_now(&self, key: &str, policy: RatePolicy) -> RateDecision {
        let now = self.now_micros();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.len() > PRUNE_ABOVE {
            state.retain(|_, tat| *tat > now);
        }
        let (decision, new_tat) = gcra(policy, state.get(key).copied(), now);
        if let Some(tat) = new_tat {
            state.insert(key.to_owned(), tat);
        }
        decision
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, policy: RatePolicy) -> Result<RateDecision, Error> {
        Ok(self.hit_now(key, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_key_has_its_own_budget() {
        let limiter = MemoryRateLimiter::new();
        let policy = RatePolicy {
            limit: 2,
            window: Duration::from_secs(60),
        };
        assert!(limiter.hit_now("a", policy).allowed);
        assert!(limiter.hit_now("a", policy).allowed);
        assert!(!limiter.hit_now("a", policy).allowed);
        assert!(limiter.hit_now("b", policy).allowed);
    }
}
