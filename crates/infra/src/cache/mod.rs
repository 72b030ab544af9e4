//! Session and membership caches: with `REDIS_URL`, [`TieredCache`] (a ≤ 5 s
//! in-process level in front of [`RedisTtlCache`], shared by all
//! instances); otherwise [`MemoryTtlCache`] (one per process).
//! The response cache: [`RedisVersionedCache`], wrapped in
//! [`ResilientVersionedCache`] for Redis outages.

mod memory;
mod redis_session;
mod resilient;
mod tiered;
mod versioned;

pub use memory::{MemoryApiKeyCache, MemoryJwtCache, MemoryMembershipCache, MemorySessionCache, MemoryTtlCache};
pub use redis_session::{RedisApiKeyCache, RedisMembershipCache, RedisSessionCache, RedisTtlCache};
pub use resilient::{MAX_PENDING, ResilientVersionedCache};
pub use tiered::{TieredApiKeyCache, TieredCache, TieredMembershipCache, TieredSessionCache};
pub use versioned::RedisVersionedCache;
