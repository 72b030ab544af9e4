//! What the OpenAPI document says about every operation, written once
//! instead of in each handler's annotation:
//!
//! - `servers`, and `security: []` on the public health routes;
//! - `X-Request-Id` on every answer; `RateLimit-*` on every `/api/*` answer,
//!   and the 429 every `/api/*` operation can answer (`Retry-After`);
//! - links from each create (`POST /x`, 201) to the operations on what it
//!   created (`/x/{id}`), so clients and fuzzers can follow them;
//! - the formats the service enforces on its request headers
//!   (`X-Organization-Id`, `Idempotency-Key`, `If-Match`, `If-None-Match`),
//!   so a schema-driven client or fuzzer sends values that pass them.
//!
//! The constraints are the ones the parsers apply (see the constants they
//! come from); a test checks the document against them.

use utoipa::Modify;
use utoipa::openapi::content::Content;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::link::Link;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::server::Server;
use utoipa::openapi::{OpenApi, RefOr, Schema};

use crate::conditional::MAX_HEADER_BYTES;

/// Visible ASCII, as `Idempotency-Key` requires.
pub const VISIBLE_ASCII: &str = "^[!-~]+$";
/// `*` or a list of entity tags (RFC 9110 §8.8.3).
pub const ENTITY_TAGS: &str = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#;

/// The modifier applied to the whole document (`crate::docs::document`).
pub struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut OpenApi) {
        openapi.servers = Some(vec![
            Server::builder()
                .url("/")
                .description(Some("This server (the origin the document was fetched from)"))
                .build(),
            Server::builder()
                .url("http://127.0.0.1:8000")
                .description(Some("Local development (`cargo run`)"))
                .build(),
        ]);
        link_creates(openapi);
        for (path, item) in &mut openapi.paths.paths {
            let api = path.starts_with("/api/");
            for operation in operations(item) {
                if path.starts_with("/health") {
                    // Public: no credential is needed, or looked at.
                    operation.security = Some(Vec::new());
                }
                constrain_headers(operation);
                if api {
                    let limited = operation
                        .responses
                        .responses
                        .entry("429".to_owned())
                        .or_insert_with(|| RefOr::T(too_many_requests()));
                    if let RefOr::T(limited) = limited {
                        limited
                            .headers
                            .entry("Retry-After".to_owned())
                            .or_insert_with(|| RefOr::T(retry_after()));
                    }
                }
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        add_common_headers(response, api);
                    }
                }
            }
        }
    }
}

/// `POST /x` answering 201 links to every operation of `/x/{id}`, with the
/// new resource's `id` as the path parameter.
fn link_creates(openapi: &mut OpenApi) {
    let mut links = Vec::new();
    for (path, item) in &openapi.paths.paths {
        let Some(member) = openapi.paths.paths.get(&format!("{path}/{{id}}")) else {
            continue;
        };
        if item.post.is_none() {
            continue;
        }
        let targets: Vec<String> = [&member.get, &member.patch, &member.delete]
            .into_iter()
            .flatten()
            .filter_map(|operation| operation.operation_id.clone())
            .collect();
        links.push((path.clone(), targets));
    }
    for (path, targets) in links {
        let created = openapi
            .paths
            .paths
            .get_mut(&path)
            .and_then(|item| item.post.as_mut())
            .and_then(|post| post.responses.responses.get_mut("201"));
        if let Some(RefOr::T(created)) = created {
            for target in targets {
                let link = Link::builder()
                    .operation_id(&target)
                    .parameter("id", "$response.body#/id")
                    .description(format!("`{target}` on the created resource"))
                    .build();
                created.links.insert(target, RefOr::T(link));
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.patch.as_mut(),
        item.delete.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn string(min: usize, max: usize, pattern: &str) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(min))
            .max_length(Some(max))
            .pattern(Some(pattern))
            .build(),
    )
}

/// The schema of a request header this service parses, by name.
fn header_schema(name: &str) -> Option<Schema> {
    match name.to_ascii_lowercase().as_str() {
        // Better-auth's ids are visible ASCII; the parser also takes other
        // UTF-8 without control characters (domain::scope::OrganizationId).
        "x-organization-id" => Some(string(1, domain::scope::ORGANIZATION_ID_MAX, VISIBLE_ASCII)),
        "idempotency-key" => Some(string(1, 255, VISIBLE_ASCII)),
        "if-match" | "if-none-match" => Some(string(1, MAX_HEADER_BYTES, ENTITY_TAGS)),
        _ => None,
    }
}

fn constrain_headers(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter
            && let Some(schema) = header_schema(&parameter.name)
        {
            parameter.schema = Some(RefOr::T(schema));
        }
    }
}

fn integer_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(Schema::Object(
            ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).build(),
        )))
        .description(Some(description))
        .build()
}

fn string_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        )))
        .description(Some(description))
        .build()
}

fn add_common_headers(response: &mut Response, api: bool) {
    response.headers.entry("X-Request-Id".to_owned()).or_insert_with(|| {
        RefOr::T(string_header(
            "The request's id: the client's own when it is 1-128 characters of A-Za-z0-9-_.:, else a new UUID",
        ))
    });
    if api {
        let headers = [
            ("RateLimit-Limit", "Requests per window for this client"),
            ("RateLimit-Remaining", "Requests left in the current window"),
            ("RateLimit-Reset", "Seconds until the window's budget is whole again"),
        ];
        for (name, description) in headers {
            response
                .headers
                .entry(name.to_owned())
                .or_insert_with(|| RefOr::T(integer_header(description)));
        }
    }
}

fn retry_after() -> Header {
    integer_header("Seconds to wait before trying again")
}

fn too_many_requests() -> Response {
    ResponseBuilder::new()
        .description(
            "Rate limited (`rate_limited`: the client's budget on /api/*, or the API key's own limit) \
             or an API key's uses spent (`usage_exceeded`)",
        )
        .header("Retry-After", retry_after())
        .content(
            "application/json",
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "ErrorResponse",
            )))),
        )
        .build()
}

#[cfg(test)]
mod tests {

    use super::*;

    fn document() -> serde_json::Value {
        serde_json::to_value(crate::docs::document()).unwrap()
    }

    fn every_operation(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                all.push((path.clone(), method.clone(), operation.clone()));
            }
        }
        all
    }

    #[test]
    fn operation_ids_are_unique_and_name_their_resource() {
        let doc = document();
        let mut seen = std::collections::HashSet::new();
        for (path, method, operation) in every_operation(&doc) {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && id.chars().all(char::is_alphanumeric),
                "{method} {path}: {id} is not camelCase"
            );
            assert!(
                !["list", "get", "create", "update", "delete"].contains(&id.as_str()),
                "{id} names no resource"
            );
            assert!(seen.insert(id.clone()), "{id} twice");
        }
    }

    #[test]
    fn health_is_public_and_api_operations_declare_429_and_the_limit_headers() {
        let doc = document();
        assert!(doc["servers"].as_array().is_some_and(|s| !s.is_empty()));
        for (path, method, operation) in every_operation(&doc) {
            if path.starts_with("/health") {
                assert_eq!(operation["security"], serde_json::json!([]), "{method} {path}");
            }
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses {
                assert!(
                    response["headers"]["X-Request-Id"].is_object(),
                    "{method} {path} {status}"
                );
                if path.starts_with("/api/") {
                    assert!(
                        response["headers"]["RateLimit-Remaining"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
            if path.starts_with("/api/") {
                assert!(
                    responses["429"]["headers"]["Retry-After"].is_object(),
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn a_create_links_to_the_operations_on_what_it_created() {
        let doc = document();
        let links = &doc["paths"]["/api/v1/items"]["post"]["responses"]["201"]["links"];
        for target in ["getItem", "updateItem", "deleteItem"] {
            assert_eq!(links[target]["operationId"], target, "{links}");
            assert_eq!(links[target]["parameters"]["id"], "$response.body#/id");
        }
    }

    #[test]
    fn header_formats_match_what_the_parsers_accept() {
        let doc = document();
        let mut checked = 0;
        for (path, method, operation) in every_operation(&doc) {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if header_schema(name).is_none() {
                    continue;
                }
                let schema = &parameter["schema"];
                assert_eq!(schema["type"], "string", "{method} {path} {name}");
                assert!(
                    schema["pattern"].is_string() && schema["maxLength"].is_number(),
                    "{method} {path} {name}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 8, "every constrained header was found: {checked}");
    }
}
