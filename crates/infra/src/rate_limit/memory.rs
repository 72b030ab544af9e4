//! GCRA in process memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use domain::Error;
use domain::rate_limit::{Grant, RateLimiter, RatePolicy, gcra};

/// Above this many tracked clients, entries whose budget is whole again are
/// dropped; the threshold then grows with what is left, so that many active
/// clients do not make every request scan the table.
const PRUNE_ABOVE: usize = 10_000;

/// Per-process limiter: one theoretical arrival time per key behind a mutex
/// (the critical section is a few arithmetic operations).
#[derive(Debug)]
pub struct MemoryRateLimiter {
    origin: Instant,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tat_by_key: HashMap<String, i64>,
    prune_above: usize,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            state: Mutex::new(State {
                tat_by_key: HashMap::new(),
                prune_above: PRUNE_ABOVE,
            }),
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
    pub fn hit_now(&self, key: &str, policy: RatePolicy, want: u32) -> Grant {
        let now = self.now_micros();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.tat_by_key.len() > state.prune_above {
            state.tat_by_key.retain(|_, tat| *tat > now);
            state.prune_above = PRUNE_ABOVE.max(2 * state.tat_by_key.len());
        }
        let (grant, new_tat) = gcra(policy, state.tat_by_key.get(key).copied(), now, want);
        match (new_tat, state.tat_by_key.get_mut(key)) {
            (Some(tat), Some(stored)) => *stored = tat,
            (Some(tat), None) => {
                state.tat_by_key.insert(key.to_owned(), tat);
            }
            (None, _) => {}
        }
        grant
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, policy: RatePolicy, want: u32) -> Result<Grant, Error> {
        Ok(self.hit_now(key, policy, want))
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
        assert!(limiter.hit_now("a", policy, 1).decision.allowed);
        assert!(limiter.hit_now("a", policy, 1).decision.allowed);
        assert!(!limiter.hit_now("a", policy, 1).decision.allowed);
        assert!(limiter.hit_now("b", policy, 1).decision.allowed);
    }

    #[test]
    fn pruning_keeps_every_client_still_limited_and_then_waits_for_the_table_to_double() {
        let limiter = MemoryRateLimiter::new();
        let policy = RatePolicy {
            limit: 1,
            window: Duration::from_secs(60),
        };
        for client in 0..=PRUNE_ABOVE {
            assert!(limiter.hit_now(&client.to_string(), policy, 1).decision.allowed);
        }
        assert!(limiter.hit_now("new", policy, 1).decision.allowed, "this hit prunes");
        assert!(
            !limiter.hit_now("0", policy, 1).decision.allowed,
            "a limited client was kept"
        );
        let state = limiter.state.lock().unwrap();
        assert_eq!(state.tat_by_key.len(), PRUNE_ABOVE + 2);
        assert_eq!(
            state.prune_above,
            2 * (PRUNE_ABOVE + 1),
            "no scan again until the table doubles"
        );
    }
}
