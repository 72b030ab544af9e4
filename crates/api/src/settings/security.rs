//! Who may call, how often: `FRONTEND_URL`, `TRUSTED_PROXIES`,
//! `RATE_LIMIT_REQUESTS`, `RATE_LIMIT_WINDOW`.

use std::time::Duration;

use super::reader::Reader;

/// Origins, proxies and rate limits.
#[derive(Debug, Clone)]
pub struct Security {
    /// `FRONTEND_URL`, split on commas, each as a browser writes its `Origin`.
    pub frontend_origins: Vec<String>,
    /// `TRUSTED_PROXIES`: CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `RATE_LIMIT_REQUESTS`.
    pub rate_limit_requests: u32,
    /// `RATE_LIMIT_WINDOW` (seconds).
    pub rate_limit_window: Duration,
}

/// Reads the group. A wildcard origin is left for [`super::policy`].
pub fn read(r: &mut Reader<'_>) -> Security {
    let mut frontend_origins: Vec<String> = Vec::new();
    for origin in r.list("FRONTEND_URL", "http://localhost:5173") {
        let origin = origin.trim_end_matches('/');
        if origin.contains('*') {
            frontend_origins.push(origin.to_owned());
            continue;
        }
        match url::Url::parse(origin) {
            // Kept as the browser serializes its `Origin` (lower-case scheme
            // and host, no default port), since CORS and CSRF compare exactly.
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && u.query().is_none() =>
            {
                let serialized = u.origin().ascii_serialization();
                if !frontend_origins.contains(&serialized) {
                    frontend_origins.push(serialized);
                }
            }
            _ => r.errors.push(format!(
                "FRONTEND_URL: {origin:?} is not an origin like https://app.example.com"
            )),
        }
    }
    let mut trusted_proxies = Vec::new();
    for entry in r.list("TRUSTED_PROXIES", "") {
        // A bare address is a /32 (or /128).
        let parsed = entry
            .parse::<ipnet::IpNet>()
            .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => r
                .errors
                .push(format!("TRUSTED_PROXIES: {entry:?} is not an IP address or CIDR")),
        }
    }
    let mut rate_limit_requests = r.bounded("RATE_LIMIT_REQUESTS", 100u32, 1, 1_000_000_000, "requests");
    let window_secs = r.bounded("RATE_LIMIT_WINDOW", 60u64, 1, 86_400, "seconds");
    // The limiter (the domain's GCRA, the Redis script, governor) spaces
    // requests in whole microseconds: above one per microsecond it would
    // allow fewer than `RateLimit-Limit` says.
    let most = window_secs.saturating_mul(MAX_PER_SECOND);
    if u64::from(rate_limit_requests) > most {
        r.errors.push(format!(
            "RATE_LIMIT_REQUESTS: at most {MAX_PER_SECOND} per second of RATE_LIMIT_WINDOW \
             (the limiter counts microseconds): at most {most} for {window_secs} s, got {rate_limit_requests}"
        ));
        rate_limit_requests = 100;
    }
    Security {
        frontend_origins,
        trusted_proxies,
        rate_limit_requests,
        rate_limit_window: Duration::from_secs(window_secs),
    }
}

/// The highest sustained rate the limiter can express: one request per microsecond.
const MAX_PER_SECOND: u64 = 1_000_000;
