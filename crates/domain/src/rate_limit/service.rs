//! The rate-limit policy for API calls: the shared limiter when there is one,
//! with a few of a busy client's slots reserved per round trip; the
//! in-process limiter when there is no shared one or when it fails.
//!
//! # Reservations
//!
//! Asking Redis on every request costs a round trip per request, which for a
//! busy client (an office behind one NAT address, a script, an attacker) is
//! most of the cost of a cheap request. So when a client sends a second
//! request within [`LEASE_TTL`], the instance asks the shared limiter for
//! more than one slot — at most [`LEASE_MAX`], and never more than 1/16 of
//! what the client has left (see [`super::gcra`]) — and serves the client's
//! next requests from those slots without a round trip, topping them up
//! when half are used. The shared budget stays exact: every slot is counted
//! in Redis when it is reserved, so all instances together never let more
//! requests through than the budget holds. What changes is only *when* a
//! request is counted: up to [`LEASE_TTL`] early. Reserved slots not used
//! within [`LEASE_TTL`] are dropped (the client loses them: a stricter error,
//! never a looser one). A client with less than 32 requests left is counted
//! one request at a time, exactly as without reservations.
//!
//! A refusal is remembered until its `Retry-After`: the shared state cannot
//! free a slot earlier (other instances can only use more), so a client that
//! is over its limit is refused without a round trip too.
//!
//! Reservations are kept per instance, in [`SHARDS`] maps chosen by a hash
//! of the client, each behind its own mutex held only for a map lookup and
//! a few additions (never across a round trip): clients on different shards
//! never wait for one another. (They were kept per worker thread once; that
//! measured within noise of one shared map — users/me ÷ `/health/live`
//! 0.82 → 0.84 over 5 interleaved pairs, per run 0.79–0.88 — and it made an
//! instance's reservations depend on which worker a connection landed on,
//! and the domain depend on a runtime detail.)

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{RateDecision, RateLimiter, RatePolicy};
use crate::log_throttle::Throttle;

/// How long reserved slots stay usable, and how close together two requests
/// must be for a client to count as busy.
pub const LEASE_TTL: Duration = Duration::from_secs(1);

/// Most slots reserved for one client in one round trip.
pub const LEASE_MAX: u32 = 256;

/// Above this many tracked clients in one shard, entries that no longer
/// matter are dropped (and the threshold grows with what is left, so pruning
/// stays occasional).
const PRUNE_ABOVE: usize = 10_000 / SHARDS;

/// How many independently locked maps hold the reservations.
const SHARDS: usize = 16;

/// What this instance knows of one client's shared budget.
#[derive(Debug, Clone, Copy)]
struct Lease {
    /// Reserved (already counted) slots not used yet.
    slots: u32,
    /// The size of the last reservation; a refill starts when `slots` falls to half of it.
    batch: u32,
    /// The shared `remaining` when the last grant was made.
    remaining: u32,
    /// When the shared budget is whole again, as of the last grant.
    reset_at: Instant,
    /// The slots are not used after this; a request before it marks the client busy.
    expires: Instant,
    /// The shared limiter refused until then.
    refused_until: Option<Instant>,
    /// A reservation is on its way.
    refilling: bool,
}

/// What the reservations say about one request.
enum Local {
    /// Decided here, nothing to ask.
    Decided(RateDecision),
    /// Allowed from a reservation that should be topped up now.
    DecidedRefill(RateDecision),
    /// Ask the shared limiter for this many slots.
    Ask(u32),
}

type Now = Arc<dyn Fn() -> Instant + Send + Sync>;

fn lock(leases: &Mutex<Leases>) -> std::sync::MutexGuard<'_, Leases> {
    leases.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The leases by client, and the size at which they are pruned next.
struct Leases {
    by_client: HashMap<String, Lease>,
    prune_above: usize,
}

/// The rate-limit policy for API calls.
pub struct RateLimitService {
    shared: Option<Arc<dyn RateLimiter>>,
    local: Arc<dyn RateLimiter>,
    policy: RatePolicy,
    /// [`SHARDS`] maps; a client's shard is chosen by `hasher`.
    leases: Box<[Mutex<Leases>]>,
    hasher: RandomState,
    now: Now,
    warnings: Throttle,
}

impl RateLimitService {
    /// `shared` is Redis-backed (optional); `local` is always available.
    pub fn new(shared: Option<Arc<dyn RateLimiter>>, local: Arc<dyn RateLimiter>, policy: RatePolicy) -> Self {
        Self::with_clock(shared, local, policy, Arc::new(Instant::now))
    }

    fn with_clock(
        shared: Option<Arc<dyn RateLimiter>>,
        local: Arc<dyn RateLimiter>,
        policy: RatePolicy,
        now: Now,
    ) -> Self {
        Self {
            shared,
            local,
            policy,
            leases: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Leases {
                        by_client: HashMap::new(),
                        prune_above: PRUNE_ABOVE,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            now,
            warnings: Throttle::default(),
        }
    }

    /// Counts one request from `client` and decides. Never fails: a shared
    /// limiter that errors is replaced by the local one for this request (a
    /// warning is logged), so a Redis outage loosens the limit to per-instance
    /// rather than refusing or failing requests.
    pub async fn check(&self, client: &str) -> RateDecision {
        let Some(shared) = &self.shared else {
            return self.check_locally(client).await;
        };
        let now = (self.now)();
        let leases = self.shard(client);
        let want = match self.use_lease(leases, client, now) {
            Local::Decided(decision) => return decision,
            Local::DecidedRefill(decision) => {
                self.reserve(leases, shared.as_ref(), client, LEASE_MAX, 0).await;
                return decision;
            }
            Local::Ask(want) => want,
        };
        match self.reserve(leases, shared.as_ref(), client, want, 1).await {
            Some(decision) => decision,
            None => self.check_locally(client).await,
        }
    }

    /// The map that holds `client`'s reservation.
    fn shard(&self, client: &str) -> &Mutex<Leases> {
        // The modulo of a u64 by SHARDS is below SHARDS, so it fits a usize.
        #[allow(clippy::cast_possible_truncation)]
        let index = (self.hasher.hash_one(client) % SHARDS as u64) as usize;
        &self.leases[index]
    }

    fn use_lease(&self, leases: &Mutex<Leases>, client: &str, now: Instant) -> Local {
        let mut leases = lock(leases);
        let Some(lease) = leases.by_client.get_mut(client) else {
            return Local::Ask(1);
        };
        if now >= lease.expires {
            lease.slots = 0;
        }
        if lease.slots > 0 {
            lease.slots -= 1;
            let decision = RateDecision {
                allowed: true,
                limit: self.policy.limit,
                remaining: lease.remaining.saturating_add(lease.slots).min(self.policy.limit),
                reset_after: lease.reset_at.saturating_duration_since(now),
                retry_after: Duration::ZERO,
            };
            if lease.refilling || lease.slots > lease.batch / 2 {
                return Local::Decided(decision);
            }
            lease.refilling = true;
            return Local::DecidedRefill(decision);
        }
        if let Some(until) = lease.refused_until.filter(|until| now < *until) {
            return Local::Decided(RateDecision {
                allowed: false,
                limit: self.policy.limit,
                remaining: 0,
                reset_after: lease.reset_at.saturating_duration_since(now),
                retry_after: until - now,
            });
        }
        if now >= lease.expires || lease.refilling {
            // Not busy (or a reservation is already on its way): one slot, exactly.
            return Local::Ask(1);
        }
        lease.refilling = true;
        Local::Ask(LEASE_MAX)
    }

    /// Asks the shared limiter for up to `want` slots, of which this request
    /// uses `used` (0 or 1); keeps the rest as a reservation. `None` when the
    /// shared limiter failed.
    async fn reserve(
        &self,
        leases: &Mutex<Leases>,
        shared: &dyn RateLimiter,
        client: &str,
        want: u32,
        used: u32,
    ) -> Option<RateDecision> {
        let result = shared.hit(client, self.policy, want).await;
        // Times are taken after the round trip: the grant is at least this fresh.
        let now = (self.now)();
        let mut leases = lock(leases);
        if want > 1
            && let Some(lease) = leases.by_client.get_mut(client)
        {
            lease.refilling = false;
        }
        let grant = match result {
            Ok(grant) => grant,
            Err(error) => {
                drop(leases);
                if let Some(suppressed) = self.warnings.admit() {
                    tracing::warn!(error = %error, suppressed, "shared rate limiter unavailable; limiting in process");
                }
                return None;
            }
        };
        if leases.by_client.len() > leases.prune_above {
            leases
                .by_client
                .retain(|_, lease| now < lease.expires || lease.refused_until.is_some_and(|until| now < until));
            leases.prune_above = PRUNE_ABOVE.max(2 * leases.by_client.len());
        }
        let decision = grant.decision;
        let kept = grant.slots.saturating_sub(used);
        let lease = leases.by_client.entry(client.to_owned()).or_insert(Lease {
            slots: 0,
            batch: 0,
            remaining: 0,
            reset_at: now,
            expires: now,
            refused_until: None,
            refilling: false,
        });
        lease.remaining = decision.remaining;
        lease.reset_at = now + decision.reset_after;
        lease.expires = now + LEASE_TTL;
        if decision.allowed {
            lease.slots = lease.slots.saturating_add(kept);
            lease.batch = if kept > 0 { kept } else { lease.batch };
            lease.refused_until = None;
        } else {
            lease.refused_until = Some(now + decision.retry_after);
        }
        Some(RateDecision {
            remaining: decision.remaining.saturating_add(lease.slots).min(self.policy.limit),
            ..decision
        })
    }

    /// Counts one request for `key` under its own `policy` (an API key's
    /// limit), exactly, on the shared limiter (no reservations: every
    /// request is one atomic step there), falling back to the local one when
    /// the shared limiter fails, as [`RateLimitService::check`] does.
    pub async fn check_with(&self, key: &str, policy: RatePolicy) -> RateDecision {
        if let Some(shared) = &self.shared {
            match shared.hit(key, policy, 1).await {
                Ok(grant) => return grant.decision,
                Err(error) => {
                    if let Some(suppressed) = self.warnings.admit() {
                        tracing::warn!(error = %error, suppressed, "shared rate limiter unavailable; limiting in process");
                    }
                }
            }
        }
        self.locally(key, policy).await
    }

    async fn check_locally(&self, client: &str) -> RateDecision {
        self.locally(client, self.policy).await
    }

    async fn locally(&self, client: &str, policy: RatePolicy) -> RateDecision {
        match self.local.hit(client, policy, 1).await {
            Ok(grant) => grant.decision,
            Err(error) => {
                // The in-process limiter cannot fail; if one ever does, let the request through.
                tracing::error!(error = %error, "local rate limiter failed; request allowed");
                RateDecision {
                    allowed: true,
                    limit: policy.limit,
                    remaining: policy.limit,
                    reset_after: Duration::ZERO,
                    retry_after: Duration::ZERO,
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
