//! What production refuses and development only warns about, in one place.

use super::Settings;
use super::auth::MIN_SECRET_BYTES;

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
    if production && settings.auth.secret_key.is_none() {
        problems.push("SECRET_KEY: must be set in production".to_owned());
    }
    if settings.security.frontend_origins.iter().any(|o| o.contains('*')) {
        problems.push("FRONTEND_URL: wildcard origins are not allowed with credentials".to_owned());
    }
    if production && settings.telemetry.debug {
        problems.push("DEBUG: must be false in production".to_owned());
    }
    problems
}
