//! `saas-api dev seed`: a demo user with a live session (as a cookie and a
//! bearer token), a JWT and an API key, so every endpoint can be tried with
//! every credential, with curl and no frontend. Refused in production.
//!
//! With `BETTER_AUTH_SECONDARY_STORAGE_URL` the session goes where better-auth
//! with `secondaryStorage` keeps it: into that Redis (and the `session` table
//! only with `BETTER_AUTH_STORE_SESSION_IN_DATABASE=true`).
//!
//! On the embedded default (SQLite) it creates the better-auth plugin tables
//! it needs (organization, jwks, apikey); on a shared database those are
//! better-auth's to create, and a credential whose table is missing is not
//! offered.

use anyhow::{Context as _, bail};
use chrono::{Duration, SubsecRound, Utc};
use domain::auth::SignatureVerifier;
use infra::better_auth::dev::secondary::DevSecondarySession;
use infra::better_auth::dev::{DevBetterAuth, DevUser, generate_token};
use infra::better_auth::{BetterAuthSchema, NamingStyle};
use infra::db::DbBackendKind;
use migration::{Migrator, MigratorTrait};

use crate::settings::Settings;
use crate::startup::connect_database;

/// The demo user's id and email.
pub const DEMO_USER_ID: &str = "demo-user";
/// The demo organization's id (the demo user owns it).
pub const DEMO_ORGANIZATION_ID: &str = "demo-org";
const DEMO_EMAIL: &str = "demo@example.com";
const SESSION_DAYS: i64 = 7;
/// The seeded JWT lives longer than better-auth's default 15 minutes, so a
/// developer can use it for an afternoon.
const JWT_HOURS: i64 = 8;

/// What `dev seed` made.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// When the new session expires.
    pub expires_at: chrono::DateTime<Utc>,
    /// `Cookie` header value: `<prefix>.session_token=<signed value>`.
    pub cookie: String,
    /// The same session as a bearer token (the signed value, as better-auth's
    /// bearer plugin hands it out): for Swagger UI's Authorize, or any client
    /// that cannot send the cookie.
    pub bearer: String,
    /// A ready-to-paste command calling `GET /api/v1/users/me` with the cookie.
    pub curl: String,
    /// A ready-to-paste command listing the demo organization's items, when
    /// the organization plugin's tables exist.
    pub organization_curl: Option<String>,
    /// A JWT of the demo user (jwt plugin), when its keys are read from the
    /// `jwks` table (no `JWKS_URL`) and the table exists.
    pub jwt: Option<String>,
    /// A raw API key of the demo user (api-key plugin), when its table exists.
    pub api_key: Option<String>,
    /// Plugin tables created by this run (a server started before it does
    /// not know them until it is restarted).
    pub created_tables: Vec<&'static str>,
}

/// Seeds and prints a ready-to-paste curl command, alone on its line.
///
/// # Errors
/// As [`seed`].
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let seeded = seed(settings).await?;
    println!(
        "Demo user {DEMO_EMAIL} (id {DEMO_USER_ID}) has a session until {}.",
        seeded.expires_at.to_rfc3339()
    );
    println!("With the server running (cargo run), try:");
    println!("{}", seeded.curl);
    println!(
        "The same session as a bearer token (Swagger UI at /docs: Authorize, bearerAuth; or -H 'Authorization: Bearer …'):"
    );
    println!("{}", seeded.bearer);
    if let Some(jwt) = &seeded.jwt {
        println!("A JWT of the demo user ({JWT_HOURS} h; Swagger UI: jwtAuth; or -H 'Authorization: Bearer …'):");
        println!("{jwt}");
    }
    if let Some(key) = &seeded.api_key {
        println!(
            "An API key of the demo user (Swagger UI: apiKeyAuth; or -H '{}: …'):",
            settings.auth.api_key_header
        );
        println!("{key}");
    }
    if let Some(curl) = &seeded.organization_curl {
        println!("The demo user owns the organization {DEMO_ORGANIZATION_ID}; its items:");
        println!("{curl}");
    }
    if !seeded.created_tables.is_empty() {
        println!(
            "(Created just now: the {} table(s). A server that was already running does not see them \
             until it is restarted: stop it and run `cargo run` again.)",
            seeded.created_tables.join(", ")
        );
    }
    Ok(())
}

/// Creates better-auth-compatible tables if missing, applies migrations, and
/// adds the demo user (once) and a new 7-day session.
///
/// # Errors
/// In production, or on any database failure.
pub async fn seed(settings: &Settings) -> anyhow::Result<Seeded> {
    if settings.is_production() {
        bail!("`dev seed` is refused when APP_ENV=production");
    }
    let db = connect_database(settings).await?;
    let probe = DevBetterAuth::new(db.clone(), NamingStyle::CamelCase);
    if !probe.tables_exist().await? {
        probe.create_tables(true).await?;
        println!("created better-auth-compatible tables (user, session, account, verification)");
    }
    Migrator::up(db.conn(), None)
        .await
        .context("running migrations failed")?;
    let secondary = settings.auth.secondary_storage.as_ref();
    let sessions_in_table = secondary.is_none_or(|s| s.store_session_in_database);
    let mut schema = BetterAuthSchema::detect_with(&db, sessions_in_table).await?;
    let dev = DevBetterAuth::new(db.clone(), schema.style);
    let mut created_tables = Vec::new();
    // Only on the embedded default: a shared database's tables are better-auth's to create.
    if db.kind() == DbBackendKind::Sqlite {
        if schema.organizations.is_none() {
            dev.create_organization_tables().await?;
            created_tables.push("organization");
        }
        if schema.jwks.is_none() {
            dev.create_jwks_table().await?;
            created_tables.push("jwks");
        }
        if schema.api_keys.is_none() {
            dev.create_api_key_table().await?;
            created_tables.push("apikey");
        }
        if !created_tables.is_empty() {
            println!("created better-auth plugin tables: {}", created_tables.join(", "));
            schema = BetterAuthSchema::detect_with(&db, sessions_in_table).await?;
        }
    }
    let now = Utc::now().trunc_subsecs(3);
    let user = DevUser {
        id: DEMO_USER_ID.to_owned(),
        email: DEMO_EMAIL.to_owned(),
        name: "Demo User".to_owned(),
        email_verified: true,
    };
    // Already seeded: reuse the user and add a fresh session. Any other
    // failure (a different user holding the demo email, a broken table) is
    // reported, not mistaken for "already seeded".
    if dev.user_exists(DEMO_USER_ID).await? {
        tracing::debug!("demo user exists");
    } else {
        dev.insert_user(&user, now).await?;
    }
    let token = generate_token();
    let expires_at = now + Duration::days(SESSION_DAYS);
    if sessions_in_table {
        dev.insert_session(DEMO_USER_ID, &token, expires_at, now).await?;
    }
    let has_organizations = schema.organizations.is_some();
    if let Some(storage) = secondary {
        // As better-auth with `secondaryStorage` keeps it: the session (and its user) in Redis.
        let client = infra::redis::RedisClient::with_tls(
            &storage.url,
            "",
            settings.cache.redis_timeout,
            &settings.cache.redis_tls,
        )?;
        DevSecondarySession {
            user: &user,
            token: &token,
            created_at: now,
            expires_at,
            active_organization_id: None,
            banned: false,
        }
        .store(&client, &storage.prefix, now)
        .await?;
        println!(
            "session stored in better-auth's secondary storage ({}<token>){}",
            storage.prefix,
            if sessions_in_table {
                " and in the session table"
            } else {
                ""
            }
        );
    }
    if has_organizations && !dev.organization_exists(DEMO_ORGANIZATION_ID).await? {
        dev.insert_organization(DEMO_ORGANIZATION_ID, "Demo Organization", "demo", now)
            .await?;
        dev.insert_member(DEMO_ORGANIZATION_ID, DEMO_USER_ID, "owner", now)
            .await?;
    }
    let jwt = if schema.jwks.is_some() && settings.auth.jwks_url.is_none() {
        let (issuer, audience) = (&settings.auth.jwt_issuer, &settings.auth.jwt_audience);
        Some(
            dev.mint_jwt(&user, issuer, audience, now, Duration::hours(JWT_HOURS))
                .await?,
        )
    } else {
        None
    };
    let api_key = if schema.api_keys.is_some() {
        let raw = format!("demo_{}{}", generate_token(), generate_token());
        dev.insert_api_key(DEMO_USER_ID, &raw, None, None, None, now).await?;
        Some(raw)
    } else {
        None
    };
    db.close().await;

    let secrets: Vec<&str> = settings.auth.better_auth_secrets.iter().map(|s| s.expose()).collect();
    let verifier = SignatureVerifier::new(&secrets);
    let signed = verifier
        .signed_cookie_value(&token)
        .context("no BETTER_AUTH_SECRET to sign the cookie with")?;
    // A bearer carries the signed value unencoded: `<token>.<signature>`.
    let bearer = format!("{token}.{}", verifier.sign(&token).unwrap_or_default());
    let host = if settings.server.host == "0.0.0.0" || settings.server.host == "::" {
        "127.0.0.1"
    } else {
        settings.server.host.as_str()
    };
    let cookie = format!("{}.session_token={signed}", settings.auth.cookie_prefix);
    let curl = format!(
        "curl -s -H 'Cookie: {cookie}' http://{host}:{}/api/v1/users/me",
        settings.server.port
    );
    let organization_curl = has_organizations.then(|| {
        format!(
            "curl -s -H 'Cookie: {cookie}' -H 'X-Organization-Id: {DEMO_ORGANIZATION_ID}' http://{host}:{}/api/v1/items",
            settings.server.port
        )
    });
    Ok(Seeded {
        expires_at,
        cookie,
        bearer,
        curl,
        organization_curl,
        jwt,
        api_key,
        created_tables,
    })
}
