//! Time as a port, so expiry and `updated_at` rules can be tested without sleeping.

use chrono::{DateTime, SubsecRound, Utc};

/// A source of the current time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current instant, in UTC, truncated to microseconds (the precision
    /// PostgreSQL stores), so a value read back equals the value written.
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}
