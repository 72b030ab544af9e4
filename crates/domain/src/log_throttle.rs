//! At most one warning per interval for a failure that can repeat on every
//! request (a cache or limiter that is down): an outage under load must not
//! turn into thousands of identical log lines per second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lets one event through per interval and counts the rest.
#[derive(Debug)]
pub struct Throttle {
    epoch: Instant,
    interval_micros: u64,
    /// Microseconds since `epoch` of the last event let through, plus one (0: never).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    /// One event per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            interval_micros: u64::try_from(interval.as_micros()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this event should be logged, `n` being how many were
    /// suppressed since the last one; `None` when it should be dropped.
    pub fn admit(&self) -> Option<u64> {
        self.admit_after(self.epoch.elapsed())
    }

    /// [`Throttle::admit`] for an event `since_start` after the throttle was made
    /// (tests pass their own time instead of sleeping).
    pub fn admit_after(&self, since_start: Duration) -> Option<u64> {
        let now = u64::try_from(since_start.as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= self.interval_micros;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_passes_and_the_rest_are_counted() {
        let throttle = Throttle::new(Duration::from_secs(1));
        let at = Duration::from_millis;
        assert_eq!(throttle.admit_after(at(0)), Some(0));
        assert_eq!(throttle.admit_after(at(10)), None);
        assert_eq!(throttle.admit_after(at(999)), None);
        assert_eq!(throttle.admit_after(at(1000)), Some(2));
        assert_eq!(throttle.admit_after(at(1500)), None);
        assert_eq!(throttle.admit_after(at(2000)), Some(1));
    }

    #[test]
    fn ten_thousand_events_in_a_second_are_one_line() {
        let throttle = Throttle::default();
        let admitted = (0..10_000u64)
            .filter(|i| throttle.admit_after(Duration::from_micros(i * 99)).is_some())
            .count();
        assert_eq!(admitted, 1);
    }
}
