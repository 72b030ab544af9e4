//! What production refuses and development only warns about, in one place.

use super::Settings;
use super::auth::MIN_SECRET_BYTES;

/// The example values of `.env.example`: a copy of the file used as is must
/// not start in production (a test keeps this list and the file in step).
pub const PLACEHOLDERS: [&str; 4] = [
    "change-me",
    "change-me-to-at-least-32-random-bytes-please",
    "new-secret-of-32-bytes-or-more",
    "old-secret-of-32-bytes-or-more",
];

/// Problems with `settings` that are fatal in production and warnings in
/// development, one line each, naming the variable.
pub fn unsafe_choices(settings: &Settings) -> Vec<String> {
    let production = settings.is_production();
    let mut problems = Vec::new();
    if settings.auth.using_dev_secret {
        problems.push(if production {
            format!("BETTER_AUTH_SECRET: not set (nor BETTER_AUTH_SECRETS); at least {MIN_SECRET_BYTES} bytes required")
        } else {
            "BETTER_AUTH_SECRET: not set; using the public development secret".to_owned()
        });
    }
    problems.extend(settings.auth.weak_secrets.iter().cloned());
    match &settings.auth.secret_key {
        None if production => problems.push("SECRET_KEY: must be set in production".to_owned()),
        Some(key) if production && key.expose().len() < MIN_SECRET_BYTES => problems.push(format!(
            "SECRET_KEY: at least {MIN_SECRET_BYTES} bytes in production (got {})",
            key.expose().len()
        )),
        _ => {}
    }
    if production {
        let secrets = settings
            .auth
            .better_auth_secrets
            .iter()
            .map(|s| ("BETTER_AUTH_SECRET", s));
        let key = settings.auth.secret_key.iter().map(|s| ("SECRET_KEY", s));
        for (name, value) in key.chain(secrets) {
            if PLACEHOLDERS.contains(&value.expose()) {
                problems.push(format!(
                    "{name}: is the example value of .env.example; set a random one (e.g. openssl rand -base64 32)"
                ));
            }
        }
    }
    if settings.security.frontend_origins.iter().any(|o| o.contains('*')) {
        problems.push("FRONTEND_URL: wildcard origins are not allowed with credentials".to_owned());
    }
    if production && settings.telemetry.debug {
        problems.push("DEBUG: must be false in production".to_owned());
    }
    problems
}
