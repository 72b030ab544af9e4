//! Rate limiters: [`RedisRateLimiter`] shares one budget among every instance;
//! [`MemoryRateLimiter`] keeps it per process (no Redis, or Redis down).

mod memory;
mod redis_gcra;

pub use memory::MemoryRateLimiter;
pub use redis_gcra::RedisRateLimiter;
