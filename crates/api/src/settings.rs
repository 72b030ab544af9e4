//! Typed configuration, built once from the environment (and `.env`).
//!
//! Every variable of the Python original keeps its name and default. Values
//! are validated before anything starts: each problem becomes one line naming
//! the variable. In production an unsafe configuration is refused; in
//! development the same problems are loud warnings and a fixed, well-known dev
//! secret stands in for `BETTER_AUTH_SECRET` so `dev seed` and the server agree.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Secret used in development when `BETTER_AUTH_SECRET` is unset. Public on
/// purpose: it must never protect anything real, and production refuses it.
pub const DEV_BETTER_AUTH_SECRET: &str = "dev-only-better-auth-secret-do-not-use-in-production";
/// Where the embedded default keeps its database.
pub const EMBEDDED_DATABASE_URL: &str = "sqlite://data/saas.db";
/// Shortest acceptable production secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local work: migrations at start-up, docs served, dev secret allowed.
    Development,
    /// Strict: configuration checked, no internals in responses.
    Production,
}

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_ENV`.
    pub environment: Environment,
    /// `DEBUG`: include internal error messages in 5xx bodies (development only).
    pub debug: bool,
    /// `HOST`.
    pub host: String,
    /// `PORT` (0 picks a free port: tests).
    pub port: u16,
    /// `DATABASE_URL`, as given.
    pub database_url: String,
    /// `DB_POOL_MAX`.
    pub db_pool_max: u32,
    /// `DB_TIMEOUT_MS`: bound on acquiring a database connection.
    pub db_timeout: Duration,
    /// `REDIS_URL`; `None` selects in-process caches.
    pub redis_url: Option<String>,
    /// `REDIS_PREFIX`: namespace of every Redis key.
    pub redis_prefix: String,
    /// `REDIS_TIMEOUT_MS`: bound on one Redis operation.
    pub redis_timeout: Duration,
    /// `BETTER_AUTH_SECRET` first, then older `BETTER_AUTH_SECRETS`.
    pub better_auth_secrets: Vec<Secret>,
    /// `BETTER_AUTH_URL`.
    pub better_auth_url: String,
    /// `BETTER_AUTH_COOKIE_PREFIX` (better-auth's `advanced.cookiePrefix`).
    pub cookie_prefix: String,
    /// `BEARER_REQUIRE_SIGNATURE`.
    pub bearer_require_signature: bool,
    /// `SECRET_KEY`.
    pub secret_key: Option<Secret>,
    /// `FRONTEND_URL`, split on commas.
    pub frontend_origins: Vec<String>,
    /// `RATE_LIMIT_REQUESTS`.
    pub rate_limit_requests: u32,
    /// `RATE_LIMIT_WINDOW` (seconds).
    pub rate_limit_window: Duration,
    /// `MAX_REQUEST_SIZE` (bytes).
    pub max_request_size: usize,
    /// `REQUEST_BODY_TIMEOUT` (seconds, default 10): the longest a request
    /// body may take to arrive before 408 and a closed connection.
    pub request_body_timeout: Duration,
    /// `SESSION_CACHE_TTL` (seconds).
    pub session_cache_ttl: Duration,
    /// `SESSION_L1_TTL_MS`: with Redis, how long a session may be served from
    /// this process's memory (at most 5 s: it bounds extra revocation lag).
    pub session_l1_ttl: Duration,
    /// `RESPONSE_CACHE_TTL` (seconds, ≤ 60, default 30; 0 = off): cache item lists in Redis.
    pub response_cache_ttl: Duration,
    /// `AUTO_MIGRATE`: run migrations at start-up (default: in development).
    pub auto_migrate: bool,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `SHUTDOWN_TIMEOUT` (seconds) for in-flight requests.
    pub shutdown_timeout: Duration,
    /// `WORKERS`: HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// `TRUSTED_PROXIES`: CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `SHUTDOWN_DELAY_MS`: readiness is 503 this long before listeners close.
    pub shutdown_delay: Duration,
    /// `DB_STARTUP_TIMEOUT` (seconds): how long start-up retries an unreachable database.
    pub db_startup_timeout: Duration,
    /// `METRICS_ADDR`: serve `/metrics` there instead of on the main listener.
    pub metrics_addr: Option<String>,
    /// `METRICS_ENABLED`: serve `/metrics` at all (default true).
    pub metrics_enabled: bool,
}

/// What validation found: fatal problems and warnings, one line each.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems that stop start-up.
    pub errors: Vec<String>,
    /// Problems tolerated in development.
    pub warnings: Vec<String>,
}

struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    errors: Vec<String>,
}

impl<'a> Reader<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_owned()
    }

    fn parse<T: FromStr>(&mut self, key: &str, default: T, what: &str) -> T {
        match self.get(key) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                self.errors.push(format!("{key}: expected {what}, got {raw:?}"));
                default
            }),
        }
    }

    fn flag(&mut self, key: &str, default: bool) -> bool {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                self.errors
                    .push(format!("{key}: expected true or false, got {other:?}"));
                default
            }
        }
    }
}

impl Settings {
    /// Reads `.env` (if present; real environment variables win) and the environment.
    ///
    /// # Errors
    /// The validation report when any fatal problem was found.
    pub fn from_env() -> Result<(Self, Report), Report> {
        // A missing .env is normal; a malformed one is worth a warning but not fatal.
        let dotenv_warning = match dotenvy::dotenv() {
            Ok(_) => None,
            Err(e) if e.not_found() => None,
            Err(e) => Some(format!(".env: could not be read ({e})")),
        };
        let vars: HashMap<String, String> = std::env::vars().collect();
        let mut result = Self::from_map(&vars);
        if let Some(w) = dotenv_warning {
            match &mut result {
                Ok((_, report)) | Err(report) => report.warnings.push(w),
            }
        }
        result
    }

    /// Builds settings from explicit variables (tests pass their own map).
    ///
    /// # Errors
    /// The validation report when any fatal problem was found.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<(Self, Report), Report> {
        let mut r = Reader {
            vars,
            errors: Vec::new(),
        };
        let environment = match r.get("APP_ENV").map(str::to_ascii_lowercase).as_deref() {
            None | Some("development" | "dev" | "local" | "test") => Environment::Development,
            Some("production" | "prod") => Environment::Production,
            Some(other) => {
                r.errors
                    .push(format!("APP_ENV: expected development or production, got {other:?}"));
                Environment::Development
            }
        };
        let production = environment == Environment::Production;
        let debug = r.flag("DEBUG", !production);
        let host = r.string("HOST", "127.0.0.1");
        let port = r.parse("PORT", 8000u16, "a port number (0-65535)");
        let database_url = r.string("DATABASE_URL", EMBEDDED_DATABASE_URL);
        let db_pool_max = r.parse("DB_POOL_MAX", 10u32, "a positive integer");
        let db_timeout = Duration::from_millis(r.parse("DB_TIMEOUT_MS", 3000u64, "milliseconds"));
        let redis_url = r.get("REDIS_URL").map(str::to_owned);
        let redis_prefix = r.string("REDIS_PREFIX", "saas:");
        let redis_timeout = Duration::from_millis(r.parse("REDIS_TIMEOUT_MS", 250u64, "milliseconds"));
        let better_auth_url = r.string("BETTER_AUTH_URL", "http://localhost:3000");
        let cookie_prefix = r.string("BETTER_AUTH_COOKIE_PREFIX", "better-auth");
        let bearer_require_signature = r.flag("BEARER_REQUIRE_SIGNATURE", false);
        let secret_key = r.get("SECRET_KEY").map(Secret::new);
        let frontend_origins: Vec<String> = r
            .string("FRONTEND_URL", "http://localhost:5173")
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        let rate_limit_requests = r.parse("RATE_LIMIT_REQUESTS", 100u32, "a positive integer");
        let rate_limit_window = Duration::from_secs(r.parse("RATE_LIMIT_WINDOW", 60u64, "seconds"));
        let max_request_size = r.parse("MAX_REQUEST_SIZE", 10 * 1024 * 1024usize, "a size in bytes");
        let request_body_timeout = Duration::from_secs(r.parse("REQUEST_BODY_TIMEOUT", 10u64, "seconds"));
        if request_body_timeout.is_zero() {
            r.errors
                .push("REQUEST_BODY_TIMEOUT: must be at least 1 second".to_owned());
        }
        let session_cache_ttl = Duration::from_secs(r.parse("SESSION_CACHE_TTL", 300u64, "seconds"));
        let session_l1_ttl = Duration::from_millis(r.parse("SESSION_L1_TTL_MS", 5000u64, "milliseconds"));
        if session_l1_ttl > Duration::from_secs(5) {
            r.errors
                .push("SESSION_L1_TTL_MS: at most 5000 (it bounds how long a revoked session lingers)".to_owned());
        }
        let response_cache_ttl = Duration::from_secs(r.parse("RESPONSE_CACHE_TTL", 30u64, "seconds"));
        if response_cache_ttl > Duration::from_secs(60) {
            r.errors.push("RESPONSE_CACHE_TTL: at most 60 seconds".to_owned());
        }
        let auto_migrate = r.flag("AUTO_MIGRATE", !production);
        let log_format = match r.get("LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
            None if production => LogFormat::Json,
            None => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some("pretty" | "text") => LogFormat::Pretty,
            Some(other) => {
                r.errors
                    .push(format!("LOG_FORMAT: expected json or pretty, got {other:?}"));
                LogFormat::Pretty
            }
        };
        let shutdown_timeout = Duration::from_secs(r.parse("SHUTDOWN_TIMEOUT", 30u64, "seconds"));
        let shutdown_delay = Duration::from_millis(r.parse("SHUTDOWN_DELAY_MS", 0u64, "milliseconds"));
        let db_startup_timeout = Duration::from_secs(r.parse("DB_STARTUP_TIMEOUT", 30u64, "seconds"));
        let metrics_addr = r.get("METRICS_ADDR").map(str::to_owned);
        if let Some(addr) = &metrics_addr
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            r.errors.push(format!(
                "METRICS_ADDR: expected host:port like 127.0.0.1:9100, got {addr:?}"
            ));
        }
        let metrics_enabled = r.flag("METRICS_ENABLED", true);
        let workers = r
            .get("WORKERS")
            .is_some()
            .then(|| r.parse("WORKERS", 1usize, "a positive integer"));

        let mut trusted_proxies = Vec::new();
        for entry in r
            .string("TRUSTED_PROXIES", "")
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
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
        for origin in &frontend_origins {
            if origin.contains('*') {
                continue; // reported below, with the production rules
            }
            match url::Url::parse(origin) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/" => {}
                _ => r.errors.push(format!(
                    "FRONTEND_URL: {origin:?} is not an origin like https://app.example.com"
                )),
            }
        }
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://"))
        {
            r.errors.push(format!(
                "REDIS_URL: expected redis:// or rediss://, got {:?}",
                infra::db::redact(url)
            ));
        }

        let mut report = Report {
            errors: std::mem::take(&mut r.errors),
            warnings: Vec::new(),
        };
        let mut problem = |message: String| {
            if production {
                report.errors.push(message)
            } else {
                report.warnings.push(message)
            }
        };

        let mut better_auth_secrets = Vec::new();
        match r.get("BETTER_AUTH_SECRET") {
            Some(secret) if secret.len() >= MIN_SECRET_BYTES => better_auth_secrets.push(Secret::new(secret)),
            Some(secret) => {
                problem(format!(
                    "BETTER_AUTH_SECRET: must be at least {MIN_SECRET_BYTES} bytes (has {})",
                    secret.len()
                ));
                better_auth_secrets.push(Secret::new(secret));
            }
            None => {
                problem("BETTER_AUTH_SECRET: not set; using the public development secret".to_owned());
                if !production {
                    better_auth_secrets.push(Secret::new(DEV_BETTER_AUTH_SECRET));
                }
            }
        }
        // better-auth's versioned secrets ("2:new,1:old" or "new,old"): the
        // first is current; all are accepted while rotating.
        if let Some(list) = r.get("BETTER_AUTH_SECRETS") {
            let parsed: Vec<Secret> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    Secret::new(
                        s.split_once(':')
                            .filter(|(v, _)| v.chars().all(|c| c.is_ascii_digit()))
                            .map_or(s, |(_, value)| value),
                    )
                })
                .collect();
            if r.get("BETTER_AUTH_SECRET").is_none() {
                better_auth_secrets.clear();
            }
            better_auth_secrets.extend(parsed);
        }
        if production && secret_key.is_none() {
            problem("SECRET_KEY: must be set in production".to_owned());
        }
        if frontend_origins.iter().any(|o| o.contains('*')) {
            problem("FRONTEND_URL: wildcard origins are not allowed with credentials".to_owned());
        }
        if production && debug {
            problem("DEBUG: must be false in production".to_owned());
        }
        if db_pool_max == 0 {
            report.errors.push("DB_POOL_MAX: must be at least 1".to_owned());
        }
        if rate_limit_requests == 0 || rate_limit_window.is_zero() {
            report
                .errors
                .push("RATE_LIMIT_REQUESTS / RATE_LIMIT_WINDOW: must be at least 1".to_owned());
        }
        let scheme = database_url.split([':', '+']).next().unwrap_or_default();
        if !matches!(scheme, "postgres" | "postgresql" | "sqlite") {
            report
                .errors
                .push("DATABASE_URL: expected a postgres:// or sqlite:// URL".to_owned());
        }

        if !report.errors.is_empty() {
            return Err(report);
        }
        let settings = Settings {
            environment,
            debug,
            host,
            port,
            database_url,
            db_pool_max,
            db_timeout,
            redis_url,
            redis_prefix,
            redis_timeout,
            better_auth_secrets,
            better_auth_url,
            cookie_prefix,
            bearer_require_signature,
            secret_key,
            frontend_origins,
            rate_limit_requests,
            rate_limit_window,
            max_request_size,
            request_body_timeout,
            session_cache_ttl,
            session_l1_ttl,
            response_cache_ttl,
            auto_migrate,
            log_format,
            shutdown_timeout,
            workers,
            trusted_proxies,
            shutdown_delay,
            db_startup_timeout,
            metrics_addr,
            metrics_enabled,
        };
        Ok((settings, report))
    }

    /// True in production.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn an_empty_environment_gives_the_embedded_default() {
        let (s, report) = Settings::from_map(&HashMap::new()).unwrap();
        assert_eq!(s.environment, Environment::Development);
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8000));
        assert_eq!(s.database_url, EMBEDDED_DATABASE_URL);
        assert!(s.redis_url.is_none());
        assert_eq!(s.better_auth_secrets[0].expose(), DEV_BETTER_AUTH_SECRET);
        assert_eq!(s.max_request_size, 10_485_760);
        assert_eq!(s.session_cache_ttl, Duration::from_secs(300));
        assert_eq!(
            (s.rate_limit_requests, s.rate_limit_window),
            (100, Duration::from_secs(60))
        );
        assert_eq!(s.frontend_origins, vec!["http://localhost:5173"]);
        assert!(s.auto_migrate && s.debug);
        assert!(report.warnings.iter().any(|w| w.starts_with("BETTER_AUTH_SECRET")));
    }

    #[test]
    fn production_refuses_unsafe_configuration_one_line_per_problem() {
        let report = Settings::from_map(&vars(&[
            ("APP_ENV", "production"),
            ("BETTER_AUTH_SECRET", "short"),
            ("FRONTEND_URL", "*"),
            ("DEBUG", "true"),
            ("PORT", "eighty"),
        ]))
        .unwrap_err();
        let joined = report.errors.join("\n");
        for variable in ["BETTER_AUTH_SECRET", "SECRET_KEY", "FRONTEND_URL", "DEBUG", "PORT"] {
            assert!(
                joined.lines().any(|l| l.starts_with(variable)),
                "{variable} missing from:\n{joined}"
            );
        }
    }

    #[test]
    fn malformed_urls_and_proxies_are_refused_even_in_development() {
        let report = Settings::from_map(&vars(&[
            ("DATABASE_URL", "mysql://h/db"),
            ("REDIS_URL", "localhost:6379"),
            (
                "FRONTEND_URL",
                "http://ok.example.com,not a url,https://x.example.com/path",
            ),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 300.1.1.1"),
        ]))
        .unwrap_err();
        let joined = report.errors.join("\n");
        assert_eq!(report.errors.len(), 5, "{joined}");
        for variable in ["DATABASE_URL", "REDIS_URL", "FRONTEND_URL", "TRUSTED_PROXIES"] {
            assert!(joined.contains(variable), "{variable} missing from:\n{joined}");
        }
    }

    #[test]
    fn trusted_proxies_accept_cidrs_and_addresses() {
        let (s, _) = Settings::from_map(&vars(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7, ::1")])).unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec!["10.0.0.0/8", "192.168.1.7/32", "::1/128"]);
    }

    #[test]
    fn production_refuses_a_missing_secret() {
        let report = Settings::from_map(&vars(&[("APP_ENV", "production"), ("SECRET_KEY", "k")])).unwrap_err();
        assert!(report.errors.iter().any(|e| e.starts_with("BETTER_AUTH_SECRET")));
    }

    #[test]
    fn a_safe_production_configuration_is_accepted() {
        let (s, report) = Settings::from_map(&vars(&[
            ("APP_ENV", "production"),
            ("BETTER_AUTH_SECRET", &"x".repeat(32)),
            ("SECRET_KEY", "k"),
            ("DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/app"),
            ("REDIS_URL", "redis://redis:6379/0"),
            ("FRONTEND_URL", "https://app.example.com, https://admin.example.com/"),
        ]))
        .unwrap();
        assert!(s.is_production() && !s.debug && !s.auto_migrate);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(
            s.frontend_origins,
            vec!["https://app.example.com", "https://admin.example.com"]
        );
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn versioned_secrets_follow_the_current_one() {
        let (s, _) = Settings::from_map(&vars(&[(
            "BETTER_AUTH_SECRETS",
            "2:new-secret-new-secret-new-secret-xx, 1:old-secret",
        )]))
        .unwrap();
        let values: Vec<&str> = s.better_auth_secrets.iter().map(Secret::expose).collect();
        assert_eq!(values, vec!["new-secret-new-secret-new-secret-xx", "old-secret"]);
    }

    #[test]
    fn secrets_never_print() {
        let (s, _) = Settings::from_map(&vars(&[(
            "BETTER_AUTH_SECRET",
            "super-secret-value-super-secret-value",
        )]))
        .unwrap();
        assert!(!format!("{s:?}").contains("super-secret-value"));
    }
}
