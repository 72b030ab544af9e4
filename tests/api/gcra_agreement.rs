//! The rate limit's three implementations of GCRA agree: the domain's
//! function, the Redis script (decided at given times, on a real Redis), and
//! governor in process (its own tests compare it with the domain's function).

use std::time::Duration;

use domain::rate_limit::{RatePolicy, gcra};
use infra::rate_limit::RedisRateLimiter;
use infra::redis::RedisClient;

use crate::helpers::redis_or_skip;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_script_and_the_domain_gcra_make_the_same_decisions() {
    let test = "gcra_agreement";
    let Some(url) = redis_or_skip(test) else {
        return;
    };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let client = RedisClient::new(&url, &prefix, Duration::from_secs(2)).unwrap();
    let limiter = RedisRateLimiter::new(client);
    let policy = RatePolicy {
        limit: 40,
        window: Duration::from_secs(10),
    };
    // Irregular gaps (ms) and reservation sizes, including reservations near
    // the limit where at most 1/16 of what is left may be taken.
    let steps: [(u64, u32); 12] = [
        (0, 1),
        (0, 8),
        (0, 256),
        (5, 32),
        (0, 1),
        (240, 64),
        (0, 256),
        (1, 256),
        (3000, 1),
        (0, 256),
        (9000, 2),
        (251, 256),
    ];
    let start = 1_700_000_000_000_000i64;
    let (mut now, mut tat) = (start, None);
    for (round, (gap, want)) in steps.iter().cycle().take(300).enumerate() {
        now += i64::try_from(gap * 1000).unwrap();
        let (expected, new_tat) = gcra(policy, tat, now, *want);
        if new_tat.is_some() {
            tat = new_tat;
        }
        let got = limiter.hit_at("client", policy, *want, Some(now)).await.unwrap();
        assert_eq!(got, expected, "round {round}: gap {gap} ms, want {want}");
    }
}
