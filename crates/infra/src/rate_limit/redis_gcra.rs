//! GCRA in Redis: one Lua script per request, so the read-decide-write is
//! atomic and every instance shares one budget per client.
//!
//! The script reads Redis's own clock (`TIME`), so instances with skewed
//! clocks still agree. State: one key per client holding the theoretical
//! arrival time in microseconds, expiring when the budget is whole again.

use async_trait::async_trait;
use domain::Error;
use domain::rate_limit::{RateDecision, RateLimiter, RatePolicy};
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

use crate::redis::RedisClient;

/// KEYS[1] = bucket; ARGV[1] = window (µs); ARGV[2] = limit.
/// Returns {allowed, remaining, reset_after_us, retry_after_us}.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = math.max(1, math.floor(window / limit))
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
local remaining = math.floor((window - (new_tat - now)) / interval)
if remaining < 0 then remaining = 0 end
return {1, remaining, new_tat - now, 0}
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
    async fn hit(&self, key: &str, policy: RatePolicy) -> Result<RateDecision, Error> {
        let bucket = self.client.key(&format!("rl:{key}"));
        let window = policy.window_micros();
        let limit = policy.limit;
        let (allowed, remaining, reset_us, retry_us): (i64, i64, i64, i64) = self
            .client
            .run(|mut conn| async move { GCRA.key(bucket).arg(window).arg(limit).invoke_async(&mut conn).await })
            .await?;
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Ok(RateDecision {
            allowed: allowed == 1,
            limit,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_after: micros(reset_us),
            retry_after: micros(retry_us),
        })
    }
}
