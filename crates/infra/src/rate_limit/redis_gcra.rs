//! GCRA in Redis: one Lua script per step (one request, or a reservation of a
//! few; see `domain::rate_limit::RateLimitService`), so the read-decide-write is
//! atomic and every instance shares one budget per client.
//!
//! The script reads Redis's own clock (`TIME`), so instances with skewed
//! clocks still agree. State: one key per client holding the theoretical
//! arrival time in microseconds, expiring when the budget is whole again.

use async_trait::async_trait;
use domain::Error;
use domain::rate_limit::{Grant, RESERVE_DIVISOR, RateDecision, RateLimiter, RatePolicy};
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

use crate::redis::RedisClient;

/// KEYS[1] = bucket; ARGV = window (µs), limit, want, reserve divisor, and
/// optionally the time (µs) to decide at instead of Redis's clock (tests).
/// Returns {slots, remaining, reset_after_us, retry_after_us}: `domain::rate_limit::gcra`, line for line.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local divisor = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = math.max(1, math.floor(window / limit))
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local available = math.floor((now + window - tat) / interval)
if available < 1 then
  return {0, 0, tat - now, tat + interval - window - now}
end
local slots = math.max(1, math.min(want, math.floor(available / divisor)))
local new_tat = tat + slots * interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
local remaining = math.max(0, math.min(available - slots, limit))
return {slots, remaining, new_tat - now, 0}
",
    )
});

/// The shared limiter.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    client: RedisClient,
}

impl RedisRateLimiter {
    /// A limiter on `client` (keys `<prefix>rl:<key>`).
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, policy: RatePolicy, want: u32) -> Result<Grant, Error> {
        self.hit_at(key, policy, want, None).await
    }
}

impl RedisRateLimiter {
    /// [`RateLimiter::hit`], deciding at `now_us` (µs) instead of Redis's
    /// clock when given: lets a test run the script and
    /// [`domain::rate_limit::gcra`] on the same sequence.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis cannot be reached.
    pub async fn hit_at(&self, key: &str, policy: RatePolicy, want: u32, now_us: Option<i64>) -> Result<Grant, Error> {
        let bucket = self.client.key(&format!("rl:{key}"));
        let window = policy.window_micros();
        let limit = policy.limit;
        let (slots, remaining, reset_us, retry_us): (i64, i64, i64, i64) = self
            .client
            .run(|mut conn| async move {
                let mut invocation = GCRA.key(bucket);
                invocation.arg(window).arg(limit).arg(want.max(1)).arg(RESERVE_DIVISOR);
                if let Some(now) = now_us {
                    invocation.arg(now);
                }
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Ok(Grant {
            decision: RateDecision {
                allowed: slots > 0,
                limit,
                remaining: u32::try_from(remaining).unwrap_or(0),
                reset_after: micros(reset_us),
                retry_after: micros(retry_us),
            },
            slots: u32::try_from(slots).unwrap_or(0),
        })
    }
}
