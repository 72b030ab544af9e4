//! Session caches: [`RedisSessionCache`] when `REDIS_URL` is set (shared by all
//! instances), [`MemorySessionCache`] otherwise (one per process).

mod memory;
mod redis_session;

pub use memory::MemorySessionCache;
pub use redis_session::RedisSessionCache;
