//! Broken connections, remembered so that the idle ones prove themselves.
//!
//! Neither the pool nor the lanes ping a connection on every use (a round
//! trip per query; see [`crate::lanes`]). So when PostgreSQL restarts, fails
//! over or a proxy drops its connections, every connection that sat idle
//! meanwhile is dead without knowing it, and each would cost one request a
//! 503 *after* the database is back. Instead, the first connection found
//! broken is noted here ([`note`]); from then on, a connection that was
//! idle at that moment is pinged before its next use ([`since`]), and a dead
//! one is replaced by a new connection instead of failing a request. A
//! connection used since the break is not pinged again: the cost is one
//! round trip per idle connection per break, nothing in steady state.
//!
//! One clock per process: a break seen on any connection makes the idle
//! connections of every pool of the process prove themselves, which costs
//! at most a ping each.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What every clock counts from.
static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The process's clock.
static PROCESS: Clock = Clock::new();

/// Notes that a connection was just found broken.
pub fn note() {
    PROCESS.note();
}

/// Whether a connection was found broken within the last `idle` (so a
/// connection idle that long may have broken with it, unnoticed).
pub fn since(idle: Duration) -> bool {
    PROCESS.since(idle)
}

/// When a connection was last found broken.
struct Clock {
    /// Nanoseconds after [`ORIGIN`], plus one (`0`: never).
    last: AtomicU64,
}

impl Clock {
    const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
        }
    }

    fn now() -> u64 {
        u64::try_from(ORIGIN.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn note(&self) {
        self.last.fetch_max(Self::now(), Ordering::Relaxed);
    }

    fn since(&self, idle: Duration) -> bool {
        match self.last.load(Ordering::Relaxed) {
            0 => false,
            last => u128::from(Self::now().saturating_sub(last)) <= idle.as_nanos(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connections_idle_across_a_break_are_suspect() {
        let clock = Clock::new();
        assert!(!clock.since(Duration::from_secs(60)), "no break yet");
        clock.note();
        std::thread::sleep(Duration::from_millis(20));
        assert!(clock.since(Duration::from_secs(60)), "idle since before the break");
        assert!(!clock.since(Duration::from_millis(5)), "used after the break");
        clock.note();
        assert!(clock.since(Duration::from_millis(5)), "a new break");
    }
}
