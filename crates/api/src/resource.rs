//! The HTTP side of a scoped resource, written once for every resource:
//! lists with `skip`/`limit` or signed cursors and `Link: rel="next"`,
//! reads with strong `ETag`s and `If-None-Match` → 304, creates with
//! `Location`, `ETag` and `Idempotency-Key`, updates and deletes with
//! `If-Match` → 412, every read through the response cache
//! ([`crate::response_cache`]), every route behind the panic guard and 405
//! with `Allow` ([`crate::app::api_resource`]), and API-key permissions
//! named after the resource.
//!
//! A resource implements [`ApiResource`] (what its JSON looks like, which
//! bodies it reads, where its service is) and invokes
//! [`crate::scoped_resource_docs!`], which writes its five handlers with
//! their OpenAPI description, and is mounted with [`mount`]. The handlers here
//! follow the same shape: parse, call the domain's
//! [`domain::resource::ScopedService`], map.

use actix_web::http::StatusCode;
use actix_web::http::header;
use std::any::{Any, TypeId};
use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use domain::resource::{Record, ScopedService};
use domain::validation::FieldErrors;
use serde::Serialize;

use crate::conditional;
use crate::error::ApiError;
use crate::extract::json_body::FromFields;
use crate::extract::{Caller, JsonBody};
use crate::idempotent;
use crate::listing;
use crate::response_cache::Views;
use crate::state::AppState;

/// What the API needs to know of a resource.
pub trait ApiResource: Record {
    /// The version of [`ApiResource::Response`]'s JSON: raise it when the
    /// shape changes (a field added, renamed or formatted otherwise).
    /// Cached answers are keyed by it (and by the build), so a rolling
    /// deploy never mixes shapes.
    const REPRESENTATION: u32;
    /// A record as the API shows it.
    type Response: Serialize + From<Self>;
    /// The body of a create.
    type CreateBody: FromFields + 'static;
    /// The body of a partial update.
    type UpdateBody: FromFields + 'static;

    /// The domain's request made of a create body (its rules checked).
    ///
    /// # Errors
    /// Field errors.
    fn new_record(body: Self::CreateBody) -> Result<Self::New, FieldErrors>;

    /// The domain's patch made of an update body (its rules checked).
    ///
    /// # Errors
    /// Field errors.
    fn patch(body: Self::UpdateBody) -> Result<Self::Patch, FieldErrors>;

    /// The resource's service: by default the one registered in
    /// [`AppState::resources`] (see `crate::resources`).
    fn service(state: &AppState) -> Option<&ScopedService<Self>> {
        state.resources.get::<Self>()
    }
}

/// Every scoped resource's service, by record type (items' is
/// [`AppState::items`]), and the tables they keep.
#[derive(Default)]
pub struct Services {
    services: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    tables: Vec<&'static str>,
}

impl Services {
    /// Registers `service`, kept in `table` (replacing one of the same resource).
    pub fn insert<R: Record>(&mut self, table: &'static str, service: ScopedService<R>) {
        self.services.insert(TypeId::of::<R>(), Box::new(service));
        if !self.tables.contains(&table) {
            self.tables.push(table);
        }
    }

    /// The tables of the registered resources (for housekeeping).
    pub fn tables(&self) -> &[&'static str] {
        &self.tables
    }

    /// The service of `R`, if registered.
    pub fn get<R: Record>(&self) -> Option<&ScopedService<R>> {
        self.services.get(&TypeId::of::<R>())?.downcast_ref()
    }
}

/// `R`'s service, or a 500 naming the mistake (a resource mounted but never
/// registered: `crate::resources` does both).
fn service<R: ApiResource>(state: &AppState) -> Result<&ScopedService<R>, ApiError> {
    R::service(state).ok_or_else(|| {
        domain::Error::Unexpected(anyhow::anyhow!(
            "resource {} is mounted but its service is not registered",
            R::RESOURCE
        ))
        .into()
    })
}

/// The resource's reads of this request, through the response cache when it is on.
fn views<R: ApiResource>(state: &AppState) -> Views<'_> {
    Views::new(R::RESOURCE, R::REPRESENTATION, state.response_cache.as_deref())
}

/// The JSON of a list answer.
fn render_list<R: ApiResource>(records: Vec<R>) -> Result<Vec<u8>, domain::Error> {
    let shown: Vec<R::Response> = records.into_iter().map(R::Response::from).collect();
    serde_json::to_vec(&shown).map_err(|e| domain::Error::Unexpected(e.into()))
}

/// The list query parameters of `R` for OpenAPI (`params(ListParams<R>)`),
/// made from its [`domain::resource::list::ListSpec`]: `sort` with its enum,
/// `created_after`, `created_before`, each flag and, when it searches, `q`.
pub struct ListParams<R>(std::marker::PhantomData<R>);

impl<R: Record> utoipa::IntoParams for ListParams<R> {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let spec = R::LIST;
        let query = |name: &str, description: String, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        let mut params = vec![query(
            "sort",
            "Order: a field, ascending, or descending with a `-` prefix; ties by id in the same direction (default `-created_at`). A cursor is bound to its sort".to_owned(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(spec.sort_values())),
        )];
        for (name, word) in [("created_after", "after"), ("created_before", "before")] {
            params.push(query(
                name,
                format!("Only records created strictly {word} this RFC 3339 date-time"),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            ));
        }
        for flag in spec.flags {
            params.push(query(
                flag,
                format!("Only records whose `{flag}` is this"),
                ObjectBuilder::new().schema_type(Type::Boolean),
            ));
        }
        if let Some(field) = spec.search {
            params.push(query(
                "q",
                format!(
                    "Only records whose `{field}` contains this text, in any case, literally (`%`, `_` and `\\` match themselves); 1–{} characters after trimming",
                    domain::resource::list::SEARCH_MAX
                ),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(domain::resource::list::SEARCH_MAX)),
            ));
        }
        params
    }
}

/// The JSON of one record.
fn render<R: ApiResource>(record: R) -> Result<Vec<u8>, domain::Error> {
    serde_json::to_vec(&R::Response::from(record)).map_err(|e| domain::Error::Unexpected(e.into()))
}

/// Whether `record`, as this API shows it, has an ETag `tags` lists (strongly).
fn matches<R: ApiResource>(tags: &conditional::Tags, record: &R) -> bool {
    render(record.clone()).is_ok_and(|body| tags.matches_strongly(&conditional::etag_of(&body)))
}

/// `GET /api/v1/<resource>`: a page of the caller's scope, newest first.
///
/// # Errors
/// 422 for bad pagination, 401, 403, 503.
pub async fn list<R: ApiResource>(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let request = listing::parse(req.query_string(), &R::LIST)?;
    let scope = caller.0.namespace();
    let page = listing::page(&request, &state.cursors, &scope)?;
    let load = service::<R>(&state)?.list_page(&caller.0, page.clone());
    let view = views::<R>(&state)
        .list(&caller.0, &page, load, render_list::<R>)
        .await?;
    let mut response = conditional::respond(&req, view.body)?;
    listing::link_next(
        &mut response,
        &req,
        &request,
        view.next.as_ref(),
        &state.cursors,
        &scope,
    );
    Ok(response)
}

/// `POST /api/v1/<resource>`: 201 with `Location` and `ETag`; with an
/// `Idempotency-Key`, a retry replays the first answer.
///
/// # Errors
/// 422 for an invalid body, 401, 403, 409, 503.
pub async fn create<R: ApiResource>(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<R::CreateBody>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let key = idempotent::key(&req)?;
    let JsonBody(request, fingerprint) = body;
    let new = R::new_record(request)?;
    let creator = caller.0.clone();
    let act = {
        let state = state.clone();
        async move {
            let record = service::<R>(&state)?.create(&creator, new).await?;
            Ok((StatusCode::CREATED.as_u16(), render(record)?))
        }
    };
    match key {
        Some(key) => {
            // Kept per caller, scope and resource: a key never collides across any.
            let scope = format!("{}|{}|{}", caller.0.user.id, caller.0.namespace(), R::RESOURCE);
            idempotent::run(&req, &state, &scope, &key, &fingerprint.0, act).await
        }
        None => {
            let (_, body) = act.await?;
            Ok(conditional::created(req.path(), body))
        }
    }
}

/// `GET /api/v1/<resource>/{id}`.
///
/// # Errors
/// 404 for a missing, foreign or malformed id; 401; 403; 503.
pub async fn get<R: ApiResource>(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let record_id = domain::resource::Id::<R>::parse(&id).ok_or(domain::Error::NotFound)?;
    let load = service::<R>(&state)?.get(&caller.0, &id);
    let body = views::<R>(&state)
        .record(&caller.0, record_id, load, render::<R>)
        .await?;
    conditional::respond(&req, body)
}

/// `PATCH /api/v1/<resource>/{id}`: partial update, conditional on `If-Match`.
///
/// # Errors
/// As [`get`], plus 412 and 422.
pub async fn update<R: ApiResource>(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<R::UpdateBody>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let if_match = conditional::parse(&req, &header::IF_MATCH)?;
    let patch = R::patch(body.0)?;
    let service = service::<R>(&state)?;
    let record = match &if_match {
        None => service.update(&caller.0, &id, patch).await?,
        Some(tags) => {
            service
                .update_if(&caller.0, &id, patch, &|record| matches(tags, record))
                .await?
        }
    };
    let body = render(record)?;
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .insert_header((header::ETAG, conditional::etag_of(&body)))
        .body(body))
}

/// `DELETE /api/v1/<resource>/{id}`: 204, conditional on `If-Match`.
///
/// # Errors
/// As [`get`], plus 412.
pub async fn delete<R: ApiResource>(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let service = service::<R>(&state)?;
    match conditional::parse(&req, &header::IF_MATCH)? {
        None => service.delete(&caller.0, &id).await?,
        Some(tags) => {
            service
                .delete_if(&caller.0, &id, &|record| matches(&tags, record))
                .await?
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Mounts resource `R`'s collection (`/<resource>`: GET, POST) and member
/// (`/<resource>/{id}`: GET, PATCH, DELETE) routes (in `/api/v1`), each with
/// the panic guard, 405 with `Allow`, and the API-key permission resource.
pub fn mount<R: ApiResource>(api: &mut web::ServiceConfig) {
    use crate::app::api_resource;
    use crate::extract::current_user::PermissionResource;
    api.service(api_resource(format!("/{}", R::RESOURCE), "GET, HEAD, POST", |r| {
        r.app_data(PermissionResource(R::RESOURCE))
            .route(web::get().to(list::<R>))
            .route(web::post().to(create::<R>))
    }))
    .service(api_resource(
        format!("/{}/{{id}}", R::RESOURCE),
        "GET, HEAD, PATCH, DELETE",
        |r| {
            r.app_data(PermissionResource(R::RESOURCE))
                .route(web::get().to(get::<R>))
                .route(web::patch().to(update::<R>))
                .route(web::delete().to(delete::<R>))
        },
    ));
}

/// The OpenAPI description of a resource's five operations (what
/// [`mount`] serves), for the `paths(…)` of `crate::resources::Docs`: invoked once
/// per resource, in its handlers module, as
///
/// ```ignore
/// crate::scoped_resource_docs! {
///     record: Item, response: ItemResponse, create: CreateItemRequest, update: UpdateItemRequest,
///     collection: "/api/v1/items", member: "/api/v1/items/{id}", tag: "items",
///     operations: ("listItems", "createItem", "getItem", "updateItem", "deleteItem"),
/// }
/// ```
///
/// It writes `list`, `create`, `get`, `update` and `delete` (each calls the
/// generic handler of this module).
#[macro_export]
macro_rules! scoped_resource_docs {
    (
        record: $record:ident, response: $response:ident, create: $create:ident, update: $update:ident,
        collection: $collection:tt, member: $member:tt, tag: $tag:tt,
        operations: ($list_id:tt, $create_id:tt, $get_id:tt, $update_id:tt, $delete_id:tt) $(,)?
    ) => {
        /// The collection: a page of the caller's scope, newest first.
        ///
        /// # Errors
        /// 422 for bad pagination, 401, 403, 503.
        #[utoipa::path(get, path = $collection, tag = $tag, operation_id = $list_id,
            params(
                ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
                ("skip" = Option<i64>, Query, minimum = 0, description = "Records to pass over (offset paging; no Link; not with cursor)"),
                ("cursor" = Option<String>, Query, description = "Where to continue: the opaque cursor of a previous page's Link (keyset paging)"),
                ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
                ("If-None-Match" = Option<String>, Header, description = "ETags (or *) the client holds: 304 when one matches"),
                $crate::resource::ListParams<$record>,
            ),
            responses(
                (status = 200, description = "The caller's records, in the order `sort` asks (newest first by default), filtered as asked", body = [$response],
                    headers(
                        ("ETag" = String, description = "Strong tag of this answer"),
                        ("Link" = String, description = "`<…?limit=…&cursor=…>; rel=\"next\"` when a next page exists (not with skip)"),
                    )),
                (status = 304, description = "Not modified: `If-None-Match` matched the current ETag",
                    headers(("ETag" = String, description = "The current tag"))),
                (status = 400, description = "Malformed If-None-Match or X-Organization-Id", body = $crate::docs::ErrorResponse),
                (status = 401, description = "Not signed in", body = $crate::docs::ErrorResponse),
                (status = 403, description = "Not a member of the organization, or an API key without `read`", body = $crate::docs::ErrorResponse),
                (status = 422, description = "Bad pagination or query: skip/limit out of range, skip with cursor, a cursor that is not genuine, not the caller's or for another sort or filter, an unknown sort, a bad flag, q or date-time, or a parameter given twice", body = $crate::docs::ErrorResponse),
            ),
            security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
        pub async fn list(
            state: actix_web::web::Data<$crate::state::AppState>,
            caller: $crate::extract::Caller,
            req: actix_web::HttpRequest,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::resource::list::<$record>(state, caller, req).await
        }

        /// Create: 201 and the new record.
        ///
        /// # Errors
        /// 422 for an invalid body, 401, 403, 409, 503.
        #[utoipa::path(post, path = $collection, tag = $tag, operation_id = $create_id,
            params(
                ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
                ("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters: a retry with the same key and body replays the first answer (kept 24 h) instead of creating again"),
            ),
            request_body = $create,
            responses(
                (status = 201, description = "Created (or, with Idempotent-Replayed: true, the first answer replayed)", body = $response,
                    headers(
                        ("Location" = String, description = "The new record's path"),
                        ("ETag" = String, description = "The new record's strong tag: what a GET of `Location` answers, usable at once in `If-Match`"),
                        ("Idempotent-Replayed" = Option<String>, description = "`true` on a replayed answer"))),
                (status = 400, description = "Malformed JSON, Idempotency-Key or X-Organization-Id", body = $crate::docs::ErrorResponse),
                (status = 409, description = "A request with this Idempotency-Key is still being processed", body = $crate::docs::ErrorResponse),
                (status = 401, description = "Not signed in", body = $crate::docs::ErrorResponse),
                (status = 403, description = "Cross-site request with a session cookie, not a member of the organization, or an API key without `create`", body = $crate::docs::ErrorResponse),
                (status = 413, description = "Body larger than MAX_REQUEST_SIZE", body = $crate::docs::ErrorResponse),
                (status = 415, description = "Not JSON", body = $crate::docs::ErrorResponse),
                (status = 422, description = "Invalid fields, or an Idempotency-Key used with another body", body = $crate::docs::ErrorResponse),
                (status = 503, description = "Storage unavailable (an idempotent create is refused rather than risked twice)", body = $crate::docs::ErrorResponse),
            ),
            security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
        pub async fn create(
            state: actix_web::web::Data<$crate::state::AppState>,
            caller: $crate::extract::Caller,
            body: $crate::extract::JsonBody<$create>,
            req: actix_web::HttpRequest,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::resource::create::<$record>(state, caller, body, req).await
        }

        /// One record of the caller's scope.
        ///
        /// # Errors
        /// 404 for a missing, foreign or malformed id; 401; 403; 503.
        #[utoipa::path(get, path = $member, tag = $tag, operation_id = $get_id,
            params(
                ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
                ("id" = uuid::Uuid, Path, description = "The record's UUID (any other value is a 404)"),
                ("If-None-Match" = Option<String>, Header, description = "ETags (or *) the client holds: 304 when one matches"),
            ),
            responses(
                (status = 200, description = "The record", body = $response,
                    headers(("ETag" = String, description = "Strong tag of this answer"))),
                (status = 304, description = "Not modified: `If-None-Match` matched the current ETag",
                    headers(("ETag" = String, description = "The current tag"))),
                (status = 400, description = "Malformed If-None-Match or X-Organization-Id", body = $crate::docs::ErrorResponse),
                (status = 401, description = "Not signed in", body = $crate::docs::ErrorResponse),
                (status = 403, description = "Not a member of the organization, or an API key without `read`", body = $crate::docs::ErrorResponse),
                (status = 404, description = "No such record in the caller's scope", body = $crate::docs::ErrorResponse),
            ),
            security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
        pub async fn get(
            state: actix_web::web::Data<$crate::state::AppState>,
            caller: $crate::extract::Caller,
            id: actix_web::web::Path<String>,
            req: actix_web::HttpRequest,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::resource::get::<$record>(state, caller, id, req).await
        }

        /// Partial update.
        ///
        /// # Errors
        /// As `get`, plus 412 and 422.
        #[utoipa::path(patch, path = $member, tag = $tag, operation_id = $update_id,
            params(
                ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
                ("id" = uuid::Uuid, Path, description = "The record's UUID (any other value is a 404)"),
                ("If-Match" = Option<String>, Header, description = "Update only if the record's ETag is one of these (or *): else 412, nothing changed"),
            ),
            request_body = $update,
            responses(
                (status = 200, description = "The updated record", body = $response,
                    headers(("ETag" = String, description = "The record's new tag"))),
                (status = 400, description = "Malformed If-Match or X-Organization-Id", body = $crate::docs::ErrorResponse),
                (status = 412, description = "If-Match does not match the record's current ETag; nothing changed", body = $crate::docs::ErrorResponse),
                (status = 401, description = "Not signed in", body = $crate::docs::ErrorResponse),
                (status = 403, description = "Cross-site request with a session cookie, not a member of the organization, another member's record without the owner or admin role, or an API key without `update`", body = $crate::docs::ErrorResponse),
                (status = 404, description = "No such record in the caller's scope", body = $crate::docs::ErrorResponse),
                (status = 422, description = "Invalid fields", body = $crate::docs::ErrorResponse),
            ),
            security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
        pub async fn update(
            state: actix_web::web::Data<$crate::state::AppState>,
            caller: $crate::extract::Caller,
            id: actix_web::web::Path<String>,
            body: $crate::extract::JsonBody<$update>,
            req: actix_web::HttpRequest,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::resource::update::<$record>(state, caller, id, body, req).await
        }

        /// Delete: 204.
        ///
        /// # Errors
        /// As `get`, plus 412.
        #[utoipa::path(delete, path = $member, tag = $tag, operation_id = $delete_id,
            params(
                ("X-Organization-Id" = Option<String>, Header, description = "Act in this better-auth organization (the caller must be a member); else the session's active organization; else personal"),
                ("id" = uuid::Uuid, Path, description = "The record's UUID (any other value is a 404)"),
                ("If-Match" = Option<String>, Header, description = "Delete only if the record's ETag is one of these (or *): else 412, nothing deleted"),
            ),
            responses(
                (status = 204, description = "Deleted"),
                (status = 400, description = "Malformed If-Match or X-Organization-Id", body = $crate::docs::ErrorResponse),
                (status = 412, description = "If-Match does not match the record's current ETag; nothing deleted", body = $crate::docs::ErrorResponse),
                (status = 401, description = "Not signed in", body = $crate::docs::ErrorResponse),
                (status = 403, description = "Cross-site request with a session cookie, not a member of the organization, another member's record without the owner or admin role, or an API key without `delete`", body = $crate::docs::ErrorResponse),
                (status = 404, description = "No such record in the caller's scope", body = $crate::docs::ErrorResponse),
            ),
            security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
        pub async fn delete(
            state: actix_web::web::Data<$crate::state::AppState>,
            caller: $crate::extract::Caller,
            id: actix_web::web::Path<String>,
            req: actix_web::HttpRequest,
        ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
            $crate::resource::delete::<$record>(state, caller, id, req).await
        }
    };
}

/// Declares a resource's JSON ([`ApiResource::Response`]): `id`, the
/// resource's own fields, `owner_id`, `organization_id`, `created_at` and
/// `updated_at` (RFC 3339), with its OpenAPI schema named `$schema`. Each
/// field is converted from the record by kind: `short` (a
/// `domain::fields::ShortText`, shown as a string), `long` (an optional
/// `LongText`, a string or null) or `plain` (shown as it is):
///
/// ```ignore
/// crate::scoped_response!(ItemResponse for Item as Item {
///     name: short String,
///     description: long Option<String>,
///     is_active: plain bool,
/// });
/// ```
#[macro_export]
macro_rules! scoped_response {
    ($response:ident for $record:ident as $schema:ident {
        $($field:ident : $kind:ident $type:ty),* $(,)?
    }) => {
        #[doc = concat!("A `", stringify!($schema), "` as the API shows it.")]
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        #[schema(as = $schema)]
        pub struct $response {
            id: uuid::Uuid,
            $($field: $type,)*
            /// Its creator (in an organization) or owner (personal).
            owner_id: String,
            /// The organization it belongs to; null for a personal record.
            organization_id: Option<String>,
            #[serde(serialize_with = "crate::json_time::rfc3339")]
            created_at: chrono::DateTime<chrono::Utc>,
            #[serde(serialize_with = "crate::json_time::rfc3339")]
            updated_at: chrono::DateTime<chrono::Utc>,
        }

        impl From<$record> for $response {
            fn from(record: $record) -> Self {
                Self {
                    id: record.id.as_uuid(),
                    $($field: $crate::scoped_response!(@show $kind record.$field),)*
                    owner_id: record.owner_id,
                    organization_id: record.organization_id,
                    created_at: record.created_at,
                    updated_at: record.updated_at,
                }
            }
        }
    };
    (@show short $value:expr) => { $value.as_str().to_owned() };
    (@show long $value:expr) => { $value.map(|text| text.as_str().to_owned()) };
    (@show plain $value:expr) => { $value };
}
