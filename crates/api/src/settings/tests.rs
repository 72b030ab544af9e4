use std::time::Duration;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn secrets(s: &Settings) -> Vec<&str> {
    s.auth.better_auth_secrets.iter().map(Secret::expose).collect()
}

const LONG: &str = "0123456789abcdef0123456789abcdef";
/// A production-grade `SECRET_KEY` (32 bytes or more).
const SECRET_KEY: &str = "secret-key-secret-key-secret-key-0123";

#[test]
fn an_empty_environment_gives_the_embedded_default() {
    let (s, report) = Settings::from_map(&HashMap::new()).unwrap();
    assert_eq!(s.environment, Environment::Development);
    assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 8000));
    assert_eq!(s.database.url, EMBEDDED_DATABASE_URL);
    assert!(s.cache.redis_url.is_none());
    assert_eq!(secrets(&s), vec![DEV_BETTER_AUTH_SECRET]);
    assert_eq!(s.server.max_request_size, 10_485_760);
    assert_eq!(s.server.request_body_timeout, Duration::from_secs(10));
    assert_eq!(s.cache.session_cache_ttl, Duration::from_secs(300));
    assert_eq!(
        (s.security.rate_limit_requests, s.security.rate_limit_window),
        (100, Duration::from_secs(60))
    );
    assert_eq!(s.security.frontend_origins, vec!["http://localhost:5173"]);
    assert!(s.database.auto_migrate && s.telemetry.debug);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w == "BETTER_AUTH_SECRET: not set; using the public development secret")
    );
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
        assert_eq!(
            joined.lines().filter(|l| l.starts_with(variable)).count(),
            1,
            "one line for {variable} in:\n{joined}"
        );
    }
}

#[test]
fn out_of_range_numbers_are_refused_even_in_development() {
    for (key, value) in [
        ("WORKERS", "0"),
        ("WORKERS", "513"),
        ("DB_POOL_MAX", "0"),
        ("RATE_LIMIT_REQUESTS", "0"),
        ("RATE_LIMIT_WINDOW", "0"),
        ("REQUEST_BODY_TIMEOUT", "0"),
        ("SESSION_L1_TTL_MS", "5001"),
        ("RESPONSE_CACHE_TTL", "61"),
        ("MAX_REQUEST_SIZE", "0"),
    ] {
        let report = Settings::from_map(&vars(&[(key, value)])).unwrap_err();
        assert_eq!(report.errors.len(), 1, "{key}={value}: {:?}", report.errors);
        assert!(report.errors[0].starts_with(key), "{:?}", report.errors);
    }
    let (s, _) = Settings::from_map(&vars(&[("WORKERS", "512")])).unwrap();
    assert_eq!(s.server.workers, Some(512));
}

#[test]
fn a_rate_limit_above_one_request_per_microsecond_is_refused() {
    let report = Settings::from_map(&vars(&[
        ("RATE_LIMIT_REQUESTS", "1000000000"),
        ("RATE_LIMIT_WINDOW", "60"),
    ]))
    .unwrap_err();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].starts_with("RATE_LIMIT_REQUESTS") && report.errors[0].contains("at most 60000000"),
        "{:?}",
        report.errors
    );
    let (s, _) = Settings::from_map(&vars(&[
        ("RATE_LIMIT_REQUESTS", "60000000"),
        ("RATE_LIMIT_WINDOW", "60"),
    ]))
    .unwrap();
    assert_eq!(s.security.rate_limit_requests, 60_000_000);
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
    let shown: Vec<String> = s.security.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(shown, vec!["10.0.0.0/8", "192.168.1.7/32", "::1/128"]);
}

#[test]
fn production_refuses_a_missing_secret() {
    let report = Settings::from_map(&vars(&[("APP_ENV", "production"), ("SECRET_KEY", SECRET_KEY)])).unwrap_err();
    assert!(report.errors.iter().any(|e| e.starts_with("BETTER_AUTH_SECRET")));
}

#[test]
fn a_safe_production_configuration_is_accepted() {
    let (s, report) = Settings::from_map(&vars(&[
        ("APP_ENV", "production"),
        ("BETTER_AUTH_SECRET", LONG),
        ("SECRET_KEY", SECRET_KEY),
        ("DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/app"),
        ("REDIS_URL", "redis://redis:6379/0"),
        ("FRONTEND_URL", "https://app.example.com, https://admin.example.com/"),
    ]))
    .unwrap();
    assert!(s.is_production() && !s.telemetry.debug && !s.database.auto_migrate);
    assert_eq!(s.telemetry.log_format, LogFormat::Json);
    assert_eq!(
        s.security.frontend_origins,
        vec!["https://app.example.com", "https://admin.example.com"]
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn production_accepts_versioned_secrets_alone_with_the_first_current() {
    let new = "new-secret-new-secret-new-secret-xx";
    let old = "old-secret-old-secret-old-secret-xx";
    let (s, report) = Settings::from_map(&vars(&[
        ("APP_ENV", "production"),
        ("SECRET_KEY", SECRET_KEY),
        ("BETTER_AUTH_SECRETS", &format!("2:{new}, 1:{old}")),
    ]))
    .unwrap();
    assert_eq!(secrets(&s), vec![new, old]);
    assert!(!s.auth.using_dev_secret);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn development_with_versioned_secrets_does_not_claim_the_dev_secret() {
    let (s, report) = Settings::from_map(&vars(&[("BETTER_AUTH_SECRETS", LONG)])).unwrap();
    assert_eq!(secrets(&s), vec![LONG]);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn the_legacy_secret_is_kept_after_the_versioned_ones() {
    let other = "another-secret-another-secret-xxxx";
    let (s, _) = Settings::from_map(&vars(&[("BETTER_AUTH_SECRETS", LONG), ("BETTER_AUTH_SECRET", other)])).unwrap();
    assert_eq!(secrets(&s), vec![LONG, other]);
}

#[test]
fn rotated_secrets_are_length_checked_without_echoing_them() {
    let report = Settings::from_map(&vars(&[
        ("APP_ENV", "production"),
        ("SECRET_KEY", SECRET_KEY),
        ("BETTER_AUTH_SECRETS", &format!("2:{LONG},1:tiny-old")),
    ]))
    .unwrap_err();
    assert_eq!(
        report.errors,
        vec!["BETTER_AUTH_SECRETS: entry 2 must be at least 32 bytes (has 8)"]
    );
    let (_, report) = Settings::from_map(&vars(&[("BETTER_AUTH_SECRETS", "1:tiny-old")])).unwrap();
    assert_eq!(report.warnings.len(), 1, "a warning in development");
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

#[test]
fn jwt_and_api_key_settings_default_to_better_auths_and_are_bounded() {
    let (s, _) = Settings::from_map(&vars(&[("BETTER_AUTH_URL", "https://auth.example.com")])).unwrap();
    assert_eq!(s.auth.jwt_issuer, "https://auth.example.com");
    assert_eq!(s.auth.jwt_audience, "https://auth.example.com");
    assert_eq!(s.auth.jwt_key_grace, Duration::from_secs(30 * 86_400));
    assert_eq!(s.auth.api_key_header, "x-api-key");
    assert!(s.auth.jwks_url.is_none());
    let (s, _) = Settings::from_map(&vars(&[
        ("JWKS_URL", "https://auth.example.com/api/auth/jwks"),
        ("JWT_ISSUER", "iss"),
        ("JWT_AUDIENCE", "aud"),
        ("JWT_KEY_GRACE", "60"),
        ("API_KEY_HEADER", "X-Service-Key"),
    ]))
    .unwrap();
    assert_eq!(
        s.auth.jwks_url.as_deref(),
        Some("https://auth.example.com/api/auth/jwks")
    );
    assert_eq!(
        (s.auth.jwt_issuer.as_str(), s.auth.jwt_audience.as_str()),
        ("iss", "aud")
    );
    assert_eq!(s.auth.jwt_key_grace, Duration::from_secs(60));
    assert_eq!(s.auth.api_key_header, "x-service-key");
    let report = Settings::from_map(&vars(&[("JWT_KEY_GRACE", "-1")])).unwrap_err();
    assert!(report.errors[0].starts_with("JWT_KEY_GRACE"), "{:?}", report.errors);
}

#[test]
fn frontend_origins_are_kept_as_browsers_send_them() {
    let (s, _) = Settings::from_map(&vars(&[(
        "FRONTEND_URL",
        "HTTPS://App.Example.com:443/, http://localhost:5173,http://preview.example.com:8080, http://localhost:5173/",
    )]))
    .unwrap();
    assert_eq!(
        s.security.frontend_origins,
        vec![
            "https://app.example.com",
            "http://localhost:5173",
            "http://preview.example.com:8080"
        ]
    );
    for bad in [
        "https://app.example.com/path",
        "app.example.com",
        "ftp://x.example",
        "https://a.example?x=1",
    ] {
        let report = Settings::from_map(&vars(&[("FRONTEND_URL", bad)])).unwrap_err();
        assert!(
            report.errors[0].starts_with("FRONTEND_URL"),
            "{bad}: {:?}",
            report.errors
        );
    }
}

#[test]
fn production_refuses_a_short_secret_key_and_the_placeholders_of_env_example() {
    let report = Settings::from_map(&vars(&[
        ("APP_ENV", "production"),
        ("BETTER_AUTH_SECRET", LONG),
        ("SECRET_KEY", "change-me"),
    ]))
    .unwrap_err();
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.starts_with("SECRET_KEY: at least 32 bytes")),
        "{:?}",
        report.errors
    );
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.starts_with("SECRET_KEY: is the example value")),
        "{:?}",
        report.errors
    );
    let report = Settings::from_map(&vars(&[
        ("APP_ENV", "production"),
        ("BETTER_AUTH_SECRET", "change-me-to-at-least-32-random-bytes-please"),
        ("SECRET_KEY", SECRET_KEY),
    ]))
    .unwrap_err();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].starts_with("BETTER_AUTH_SECRET: is the example value"));
    // Development only warns.
    let (_, report) = Settings::from_map(&vars(&[("SECRET_KEY", "change-me")])).unwrap();
    assert!(report.errors.is_empty());
}

#[test]
fn every_example_secret_of_env_example_is_a_known_placeholder() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example")).unwrap();
    let mut found = 0;
    for line in example.lines() {
        let line = line.trim_start_matches('#').trim();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if !(name.contains("SECRET") || name == "SECRET_KEY") || value.is_empty() {
            continue;
        }
        for entry in value.split(',') {
            let entry = entry.split_once(':').map_or(entry, |(_, v)| v);
            assert!(
                policy::PLACEHOLDERS.contains(&entry),
                "{name}={entry} is not in PLACEHOLDERS"
            );
            found += 1;
        }
    }
    assert!(found >= 3, "the example secrets were found: {found}");
}

#[test]
fn secondary_storage_is_off_by_default_and_read_with_redis_storages_default_prefix() {
    let (s, _) = Settings::from_map(&vars(&[])).unwrap();
    assert!(s.auth.secondary_storage.is_none());
    let (s, _) = Settings::from_map(&vars(&[(
        "BETTER_AUTH_SECONDARY_STORAGE_URL",
        "redis://127.0.0.1:6379/3",
    )]))
    .unwrap();
    let storage = s.auth.secondary_storage.unwrap();
    assert_eq!(storage.prefix, "better-auth:");
    assert!(!storage.store_session_in_database, "better-auth's default");
    let (s, _) = Settings::from_map(&vars(&[
        ("BETTER_AUTH_SECONDARY_STORAGE_URL", "redis://127.0.0.1:6379/3"),
        ("BETTER_AUTH_SECONDARY_STORAGE_PREFIX", ""),
        ("BETTER_AUTH_STORE_SESSION_IN_DATABASE", "true"),
    ]))
    .unwrap();
    let storage = s.auth.secondary_storage.unwrap();
    assert_eq!(storage.prefix, "", "redis-storage accepts an empty keyPrefix");
    assert!(storage.store_session_in_database);
}

#[test]
fn a_malformed_secondary_storage_url_or_prefix_is_one_line_each() {
    let report = Settings::from_map(&vars(&[
        ("BETTER_AUTH_SECONDARY_STORAGE_URL", "redis://:pw@host:notaport/0"),
        ("BETTER_AUTH_SECONDARY_STORAGE_PREFIX", "with space:"),
    ]))
    .unwrap_err();
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(report.errors[0].starts_with("BETTER_AUTH_SECONDARY_STORAGE_URL: "));
    assert!(!report.errors[0].contains("pw"), "the password never shows");
    assert!(report.errors[1].starts_with("BETTER_AUTH_SECONDARY_STORAGE_PREFIX: "));
    let report = Settings::from_map(&vars(&[("BETTER_AUTH_SECONDARY_STORAGE_URL", "localhost:6379")])).unwrap_err();
    assert_eq!(
        report.errors,
        vec![r#"BETTER_AUTH_SECONDARY_STORAGE_URL: expected redis:// or rediss://, got "localhost:6379""#]
    );
    let report = Settings::from_map(&vars(&[("BETTER_AUTH_SECONDARY_STORAGE_PREFIX", "x:")])).unwrap_err();
    assert_eq!(
        report.errors,
        vec!["BETTER_AUTH_SECONDARY_STORAGE_PREFIX: set without BETTER_AUTH_SECONDARY_STORAGE_URL"]
    );
}

#[test]
fn production_keeps_metrics_private_unless_told_otherwise() {
    let base = [
        ("APP_ENV", "production"),
        ("BETTER_AUTH_SECRET", LONG),
        ("SECRET_KEY", SECRET_KEY),
    ];
    let (s, _) = Settings::from_map(&vars(&base)).unwrap();
    assert_eq!(s.telemetry.metrics_addr.as_deref(), Some("127.0.0.1:9100"));
    assert!(!s.telemetry.metrics_on_main_listener);
    let mut public = base.to_vec();
    public.push(("METRICS_PUBLIC", "true"));
    let (s, _) = Settings::from_map(&vars(&public)).unwrap();
    assert_eq!(s.telemetry.metrics_addr, None);
    assert!(s.telemetry.metrics_on_main_listener);
    let mut elsewhere = base.to_vec();
    elsewhere.push(("METRICS_ADDR", "0.0.0.0:9464"));
    let (s, _) = Settings::from_map(&vars(&elsewhere)).unwrap();
    assert_eq!(s.telemetry.metrics_addr.as_deref(), Some("0.0.0.0:9464"));
    assert!(!s.telemetry.metrics_on_main_listener);
    let (s, _) = Settings::from_map(&vars(&[])).unwrap();
    assert!(
        s.telemetry.metrics_on_main_listener && s.telemetry.metrics_addr.is_none(),
        "development"
    );
}

#[test]
fn opentelemetry_is_off_without_an_endpoint_and_reads_the_standard_variables() {
    let (s, _) = Settings::from_map(&vars(&[])).unwrap();
    assert!(s.telemetry.otel.is_none(), "nothing exported, nothing costs");
    let (s, _) = Settings::from_map(&vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-team=core, authorization=Basic%20abc"),
    ]))
    .unwrap();
    let otel = s.telemetry.otel.unwrap();
    assert_eq!(otel.traces_endpoint, "http://collector:4318/v1/traces");
    assert_eq!(otel.service_name, "saas-api");
    assert!(otel.parent_based && (otel.sampler_ratio - 0.1).abs() < f64::EPSILON);
    assert_eq!(
        otel.headers,
        vec![
            ("x-team".to_owned(), "core".to_owned()),
            ("authorization".to_owned(), "Basic abc".to_owned())
        ]
    );
    let (s, _) = Settings::from_map(&vars(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://agent:4318/custom"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
        ("OTEL_SERVICE_NAME", "billing-api"),
    ]))
    .unwrap();
    let otel = s.telemetry.otel.unwrap();
    assert_eq!(
        otel.traces_endpoint, "http://agent:4318/custom",
        "the signal's own variable wins, as given"
    );
    assert_eq!(otel.service_name, "billing-api");
    let (s, _) = Settings::from_map(&vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_SDK_DISABLED", "true"),
    ]))
    .unwrap();
    assert!(s.telemetry.otel.is_none());
    let report = Settings::from_map(&vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
    ]))
    .unwrap_err();
    assert_eq!(report.errors.len(), 4, "{:?}", report.errors);
}
