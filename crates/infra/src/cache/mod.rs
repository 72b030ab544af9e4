//! Session caches: with `REDIS_URL`, [`TieredSessionCache`] (a ≤ 5 s
//! in-process level in front of [`RedisSessionCache`], shared by all
//! instances); otherwise [`MemorySessionCache`] (one per process).
//! The response cache: [`RedisVersionedCache`], wrapped in
//! [`ResilientVersionedCache`] for Redis outages.

mod memory;
mod redis_session;
mod resilient;
mod tiered;
mod versioned;

pub use memory::MemorySessionCache;
pub use redis_session::RedisSessionCache;
pub use resilient::{MAX_PENDING, ResilientVersionedCache};
pub use tiered::TieredSessionCache;
pub use versioned::RedisVersionedCache;
