//! Every scoped resource of `/api/v1`, registered in one place: its module
//! (the handlers, in `resources/`), its routes, its OpenAPI paths and its
//! service. `saas-api generate resource` adds a resource here (at the
//! `saas-api generate:` marks); by hand, add the same lines (see
//! docs/adding-a-resource.md). Items, the resource the starter ships with,
//! live in `handlers/items.rs` and are registered here too.

use std::sync::Arc;

use actix_web::web;
use domain::change::ChangeObserver;
use domain::clock::Clock;
use domain::resource::ScopedService;
use infra::Db;
use infra::resource::{LanedRepository, ScopedTable, TracedRepository};

use crate::resource::{Services, mount};

// saas-api generate: modules above this line

/// Mounts every resource's routes (in `/api/v1`).
pub fn routes(api: &mut web::ServiceConfig) {
    mount::<domain::item::Item>(api);
    // saas-api generate: routes above this line
}

/// The OpenAPI paths of every resource but items (whose are in
/// `crate::docs::ApiDoc`); merged into it.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        // saas-api generate: paths above this line
    ),
    tags(
        // saas-api generate: tags above this line
    )
)]
pub struct Docs;

/// The service of every resource but items (which `startup::services`
/// builds: the other services use it).
///
/// # Errors
/// When a table's catalogue cannot be read.
#[allow(unused_variables, unused_mut, clippy::let_and_return)]
pub async fn services(
    db: &Db,
    clock: &Arc<dyn Clock>,
    observer: Option<Arc<dyn ChangeObserver>>,
) -> anyhow::Result<Services> {
    let mut services = Services::default();
    // saas-api generate: services above this line
    Ok(services)
}

/// Registers the service of the resource stored in table `T` in
/// `services`: the generic repository with its lanes (traced), the clock, and the response
/// cache told of every write.
///
/// # Errors
/// When the table's catalogue cannot be read.
pub async fn register<T: ScopedTable>(
    services: &mut Services,
    db: &Db,
    clock: &Arc<dyn Clock>,
    observer: Option<Arc<dyn ChangeObserver>>,
) -> anyhow::Result<()>
where
    LanedRepository<T>: domain::resource::ScopedRepository<T::Record>,
{
    let repository = LanedRepository::<T>::detect(db.clone()).await?;
    let traced = TracedRepository::new(repository, db.kind());
    let service = ScopedService::new(Arc::new(traced), clock.clone());
    let service = match observer {
        Some(observer) => service.with_change_observer(observer),
        None => service,
    };
    services.insert(T::TABLE, service);
    Ok(())
}
