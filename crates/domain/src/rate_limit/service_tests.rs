//! The rate limiter's rules (GCRA, reservations, fallback), each on fakes.

use super::super::{Grant, MockRateLimiter, gcra};
use super::*;
use crate::error::Error;

const POLICY: RatePolicy = RatePolicy {
    limit: 10_000,
    window: Duration::from_secs(10),
};

/// A shared limiter that runs [`gcra`] in memory on the test clock and records each `want`.
struct Shared {
    tat: Mutex<Option<i64>>,
    calls: Mutex<Vec<u32>>,
    origin: Instant,
    clock: Arc<Mutex<Instant>>,
}

#[async_trait::async_trait]
impl RateLimiter for Shared {
    async fn hit(&self, _key: &str, policy: RatePolicy, want: u32) -> Result<Grant, Error> {
        self.calls.lock().unwrap().push(want);
        let now = i64::try_from((*self.clock.lock().unwrap() - self.origin).as_micros()).unwrap();
        let mut tat = self.tat.lock().unwrap();
        let (grant, next) = gcra(policy, *tat, now, want);
        if next.is_some() {
            *tat = next;
        }
        Ok(grant)
    }
}

struct Fixture {
    clock: Arc<Mutex<Instant>>,
    shared: Arc<Shared>,
    service: RateLimitService,
}

impl Fixture {
    fn new(policy: RatePolicy) -> Self {
        let start = Instant::now();
        let clock = Arc::new(Mutex::new(start));
        let shared = Arc::new(Shared {
            tat: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
            origin: start,
            clock: clock.clone(),
        });
        let mut local = MockRateLimiter::new();
        local.expect_hit().never();
        let now = clock.clone();
        let service = RateLimitService::with_clock(
            Some(shared.clone() as Arc<dyn RateLimiter>),
            Arc::new(local),
            policy,
            Arc::new(move || *now.lock().unwrap()),
        );
        Self { clock, shared, service }
    }

    fn advance(&self, by: Duration) {
        *self.clock.lock().unwrap() += by;
    }

    fn calls(&self) -> Vec<u32> {
        self.shared.calls.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn every_thread_of_an_instance_uses_the_same_reservations() {
    let f = Arc::new(Fixture::new(POLICY));
    // This thread: one slot, then a busy client's reservation of LEASE_MAX.
    assert!(f.service.check("c").await.allowed);
    assert!(f.service.check("c").await.allowed);
    assert_eq!(f.calls(), vec![1, LEASE_MAX]);

    // Another thread (another worker) is served from the same reservation.
    let other = Arc::clone(&f);
    let remaining = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async move { other.service.check("c").await })
    })
    .join()
    .unwrap();
    assert!(remaining.allowed);
    assert_eq!(f.calls(), vec![1, LEASE_MAX], "no round trip from the other thread");
    assert_eq!(
        remaining.remaining,
        POLICY.limit - 3,
        "the reservation's slots count as remaining until used"
    );
}

#[tokio::test]
async fn a_lone_request_takes_one_slot_and_a_busy_client_is_served_from_reservations() {
    let f = Fixture::new(POLICY);
    let first = f.service.check("c").await;
    assert!(first.allowed);
    assert_eq!(first.remaining, 9_999);
    assert_eq!(f.calls(), vec![1], "a single request reserves nothing");

    let mut remaining = Vec::new();
    for _ in 0..200 {
        let decision = f.service.check("c").await;
        assert!(decision.allowed);
        remaining.push(decision.remaining);
    }
    assert!(remaining.windows(2).all(|w| w[1] < w[0]), "remaining only goes down");
    assert_eq!(
        *remaining.last().unwrap(),
        9_999 - 200,
        "every request was counted once"
    );
    let calls = f.calls();
    assert!(calls.len() <= 8, "200 requests, {} round trips: {calls:?}", calls.len());
    assert!(calls[1..].iter().all(|want| *want == LEASE_MAX));
}

#[tokio::test]
async fn the_shared_budget_is_never_exceeded_and_a_refusal_is_remembered_until_retry_after() {
    let policy = RatePolicy {
        limit: 100,
        window: Duration::from_secs(100),
    };
    let f = Fixture::new(policy);
    let allowed = {
        let mut n = 0;
        for _ in 0..150 {
            n += u32::from(f.service.check("c").await.allowed);
        }
        n
    };
    assert_eq!(allowed, 100, "exactly the budget, though slots were reserved");
    let calls_at_refusal = f.calls().len();
    assert!(
        calls_at_refusal < 100,
        "reservations saved round trips: {calls_at_refusal}"
    );

    let refused = f.service.check("c").await;
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, Duration::from_secs(1));
    assert_eq!(
        f.calls().len(),
        calls_at_refusal,
        "a remembered refusal costs no round trip"
    );

    f.advance(Duration::from_secs(1));
    assert!(f.service.check("c").await.allowed, "one slot after one interval");
    assert_eq!(f.calls().len(), calls_at_refusal + 1);
}

#[tokio::test]
async fn unused_reservations_expire_and_are_refilled_only_for_busy_clients() {
    // One slot per 100 s: waiting one second frees nothing.
    let f = Fixture::new(RatePolicy {
        limit: 10_000,
        window: Duration::from_secs(1_000_000),
    });
    f.service.check("c").await;
    f.service.check("c").await;
    assert_eq!(f.calls(), vec![1, LEASE_MAX]);
    f.advance(LEASE_TTL);
    let after_idle = f.service.check("c").await;
    assert!(after_idle.allowed);
    assert_eq!(f.calls(), vec![1, LEASE_MAX, 1], "expired slots are not used");
    assert_eq!(
        after_idle.remaining,
        10_000 - 1 - LEASE_MAX - 1,
        "the expired reservation stays counted"
    );
}

#[tokio::test]
async fn lapsed_clients_are_pruned_once_a_shard_outgrows_its_threshold() {
    let f = Fixture::new(POLICY);
    let shard = |client: &str| std::ptr::from_ref(f.service.shard(client));
    let target = shard("0");
    // Clients that share the shard of "0", named by a prefix and a number.
    let same_shard = |prefix: &str, n: usize| {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .filter(|client| shard(client) == target)
            .take(n)
            .collect::<Vec<_>>()
    };
    let mut first = vec!["0".to_owned()];
    first.extend(same_shard("early ", PRUNE_ABOVE));
    for client in &first {
        f.service.check(client).await;
    }
    f.service.check(&same_shard("one more ", 1)[0]).await;
    let after_first = lock(f.service.shard("0")).prune_above;
    assert_eq!(
        after_first,
        2 * (PRUNE_ABOVE + 1),
        "all still live: nothing dropped, threshold doubled"
    );

    f.advance(LEASE_TTL * 2);
    for client in same_shard("later ", PRUNE_ABOVE + 2) {
        f.service.check(&client).await;
    }
    let leases = lock(f.service.shard("0"));
    assert!(
        leases.by_client.len() <= PRUNE_ABOVE + 2,
        "the lapsed ones were dropped: {}",
        leases.by_client.len()
    );
    assert!(!leases.by_client.contains_key("0"));
}

#[tokio::test]
async fn a_failing_shared_limiter_falls_back_to_the_local_one() {
    let mut shared = MockRateLimiter::new();
    shared
        .expect_hit()
        .returning(|_, _, _| Err(Error::Unavailable(anyhow::anyhow!("redis down"))));
    let mut local = MockRateLimiter::new();
    local.expect_hit().times(2).returning(|_, policy, _| {
        Ok(Grant {
            decision: RateDecision {
                allowed: true,
                limit: policy.limit,
                remaining: 7,
                reset_after: Duration::ZERO,
                retry_after: Duration::ZERO,
            },
            slots: 1,
        })
    });
    let service = RateLimitService::new(Some(Arc::new(shared)), Arc::new(local), POLICY);
    assert_eq!(service.check("k").await.remaining, 7);
    assert_eq!(service.check("k").await.remaining, 7);
}

#[tokio::test]
async fn without_a_shared_limiter_the_local_one_decides_every_request() {
    let mut local = MockRateLimiter::new();
    local
        .expect_hit()
        .withf(|key, _, want| key == "1.2.3.4" && *want == 1)
        .times(3)
        .returning(|_, policy, _| Ok(gcra(policy, None, 0, 1).0));
    let service = RateLimitService::new(None, Arc::new(local), POLICY);
    for _ in 0..3 {
        assert!(service.check("1.2.3.4").await.allowed);
    }
}
