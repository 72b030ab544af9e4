//! Migrations create and drop only the application's tables; start-up refuses
//! a database without better-auth's tables.

use infra::Db;
use infra::better_auth::NamingStyle;
use infra::better_auth::dev::DevBetterAuth;
use infra::db::DbOptions;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::{Backend, Options, ScratchDb, on_every_backend, settings_map};

async fn tables(db: &Db) -> Vec<String> {
    let sql = match db.kind() {
        infra::DbBackendKind::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        }
        infra::DbBackendKind::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
    };
    let rows = db
        .conn()
        .query_all_raw(Statement::from_string(db.backend(), sql))
        .await
        .unwrap();
    rows.iter().map(|r| r.try_get::<String>("", "name").unwrap()).collect()
}

/// The auth-change triggers on better-auth's tables (PostgreSQL): `(table, trigger)`.
async fn auth_change_triggers(db: &Db) -> Vec<String> {
    if db.kind() != infra::DbBackendKind::Postgres {
        return Vec::new();
    }
    let sql = "SELECT tgrelid::regclass::text || ' ' || tgname::text AS name FROM pg_trigger \
               WHERE NOT tgisinternal AND tgname LIKE 'saas_api_auth_change%' ORDER BY 1";
    let rows = db
        .conn()
        .query_all_raw(Statement::from_string(db.backend(), sql))
        .await
        .unwrap();
    rows.iter().map(|r| r.try_get::<String>("", "name").unwrap()).collect()
}

async fn migrations_go_up_and_down_without_touching_better_auth_tables(backend: Backend) {
    let Some(scratch) = ScratchDb::create(backend, "migrations_go_up_and_down").await else {
        return;
    };
    let db = Db::connect(&scratch.url, &DbOptions::default()).await.unwrap();
    DevBetterAuth::new(db.clone(), NamingStyle::SnakeCase)
        .create_tables(false)
        .await
        .unwrap();
    let better_auth = ["account", "session", "user", "verification"];

    Migrator::up(db.conn(), None).await.unwrap();
    let after_up = tables(&db).await;
    assert!(after_up.contains(&"items".to_owned()), "{after_up:?}");
    assert!(better_auth.iter().all(|t| after_up.contains(&(*t).to_owned())));
    let index = match db.kind() {
        infra::DbBackendKind::Postgres => "SELECT indexname::text AS name FROM pg_indexes WHERE tablename = 'items'",
        infra::DbBackendKind::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'",
    };
    let indexes: Vec<String> = db
        .conn()
        .query_all_raw(Statement::from_string(db.backend(), index))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect();
    assert!(
        indexes.contains(&"idx_items_owner_id_created_at".to_owned()),
        "{indexes:?}"
    );

    let triggers = auth_change_triggers(&db).await;
    if db.kind() == infra::DbBackendKind::Postgres {
        // user and session only (no plugin tables here): a delete trigger each, and an update
        // trigger on session (its expiry); `user` has no ban or role columns without the admin plugin.
        for expected in [
            "\"user\" saas_api_auth_change_d",
            "session saas_api_auth_change_d",
            "session saas_api_auth_change_u",
        ] {
            assert!(triggers.contains(&expected.to_owned()), "{expected} in {triggers:?}");
        }
        // Running the installer again (every start-up does) changes nothing.
        db.execute_unprepared(migration::auth_changes::INSTALL).await.unwrap();
        assert_eq!(auth_change_triggers(&db).await, triggers);
    }

    Migrator::down(db.conn(), None).await.unwrap();
    assert!(auth_change_triggers(&db).await.is_empty(), "down removes every trigger");
    let after_down = tables(&db).await;
    assert!(!after_down.contains(&"items".to_owned()), "{after_down:?}");
    assert!(
        better_auth.iter().all(|t| after_down.contains(&(*t).to_owned())),
        "{after_down:?}"
    );

    Migrator::up(db.conn(), None).await.unwrap();
    assert!(tables(&db).await.contains(&"items".to_owned()), "up again after down");
    db.close().await;
}

on_every_backend!(migrations_go_up_and_down_without_touching_better_auth_tables);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_a_postgres_database_without_better_auth_tables() {
    let Some(scratch) = ScratchDb::create(
        Backend::Postgres(NamingStyle::CamelCase),
        "start_up_refuses_missing_tables",
    )
    .await
    else {
        return;
    };
    let options = Options {
        extra: vec![("AUTO_MIGRATE".into(), "false".into())],
        ..Options::default()
    };
    let vars = settings_map(&scratch.url, &options, None, "unused:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let error = api::Application::build(settings)
        .await
        .err()
        .expect("start-up must fail");
    let message = format!("{error:#}");
    assert!(message.contains("better-auth tables not found"), "{message}");
    assert!(message.contains("storeSessionInDatabase"), "{message}");
    assert!(message.contains("BETTER_AUTH_SECONDARY_STORAGE_URL"), "{message}");
}

/// Development runs migrations at start-up: without better-auth's tables the
/// items migration would fail on its foreign key first, so detection comes
/// before it and the prepared message is what the user reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_start_up_names_missing_better_auth_tables_before_migrating() {
    let Some(scratch) = ScratchDb::create(Backend::Postgres(NamingStyle::CamelCase), "start_up_detects_first").await
    else {
        return;
    };
    let vars = settings_map(&scratch.url, &Options::default(), None, "unused:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    assert!(settings.database.auto_migrate);
    let message = format!("{:#}", api::Application::build(settings).await.err().expect("refused"));
    assert!(message.contains("better-auth tables not found"), "{message}");
    assert!(!message.contains("does not exist"), "{message}");
    let db = Db::connect(&scratch.url, &DbOptions::default()).await.unwrap();
    assert!(tables(&db).await.iter().all(|t| t != "items"), "nothing was migrated");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_without_auto_migrate_refuses_pending_migrations_by_name() {
    let Some(scratch) = ScratchDb::create(Backend::Postgres(NamingStyle::SnakeCase), "start_up_refuses_pending").await
    else {
        return;
    };
    let db = Db::connect(&scratch.url, &DbOptions::default()).await.unwrap();
    DevBetterAuth::new(db.clone(), NamingStyle::SnakeCase)
        .create_tables(false)
        .await
        .unwrap();
    let options = Options {
        extra: vec![("AUTO_MIGRATE".into(), "false".into())],
        ..Options::default()
    };
    let vars = settings_map(&scratch.url, &options, None, "unused:");
    let (settings, _) = api::Settings::from_map(&vars).unwrap();
    let message = format!(
        "{:#}",
        api::Application::build(settings.clone()).await.err().expect("refused")
    );
    assert!(message.contains("m20260101_000001_create_items"), "{message}");
    assert!(message.contains("saas-api migrate up"), "{message}");

    Migrator::up(db.conn(), None).await.unwrap();
    let app = api::Application::build(settings).await.expect("starts once migrated");
    drop(app);
    db.close().await;
}
