//! Request bodies for items, converted once into domain requests.
//!
//! Rules: `name` is a string of 1–255 characters after trimming; `description`
//! a string (≤ 65,535 characters) or null; `is_active` a boolean. Any other
//! field — `id` and `owner_id` included — is rejected. On PATCH an absent
//! field is left alone, `description: null` clears the description, and a null
//! `name` or `is_active` is an error. Every problem is reported, not just the first.

use domain::item::{ItemDescription, ItemName, ItemPatch, NewItem};
use domain::validation::FieldErrors;
use serde_json::{Map, Value};

const FIELDS: [&str; 3] = ["name", "description", "is_active"];

/// The body of `POST /api/v1/items`, for the OpenAPI description (bodies are
/// parsed by [`new_item`], which reports every field problem at once).
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = CreateItem)]
pub struct CreateItemRequest {
    /// 1–255 characters once trimmed; stored trimmed.
    #[schema(min_length = 1, max_length = 255, example = "Desk lamp")]
    pub name: String,
    /// At most 65,535 characters.
    #[schema(max_length = 65535)]
    pub description: Option<String>,
    /// Defaults to true.
    #[schema(default = true)]
    pub is_active: Option<bool>,
}

/// The body of `PATCH /api/v1/items/{id}`: absent fields are left alone;
/// `description: null` clears the description.
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = UpdateItem)]
pub struct UpdateItemRequest {
    /// 1–255 characters once trimmed; not null.
    #[schema(min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// At most 65,535 characters, or null to clear.
    #[schema(max_length = 65535, nullable)]
    pub description: Option<String>,
    /// Not null.
    pub is_active: Option<bool>,
}

fn reject_unknown(body: &Map<String, Value>, errors: &mut FieldErrors) {
    for key in body.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        let message = if matches!(key.as_str(), "id" | "owner_id" | "created_at" | "updated_at") {
            "is set by the server and cannot be given"
        } else {
            "unknown field"
        };
        errors.push(key, "unknown_field", message);
    }
}

fn name(value: &Value) -> Result<ItemName, FieldErrors> {
    match value {
        Value::String(s) => ItemName::parse(s),
        Value::Null => Err(FieldErrors::single("name", "null", "must not be null")),
        _ => Err(FieldErrors::single("name", "type_error", "must be a string")),
    }
}

fn description(value: &Value) -> Result<Option<ItemDescription>, FieldErrors> {
    match value {
        Value::String(s) => ItemDescription::parse(s).map(Some),
        Value::Null => Ok(None),
        _ => Err(FieldErrors::single(
            "description",
            "type_error",
            "must be a string or null",
        )),
    }
}

fn is_active(value: &Value) -> Result<bool, FieldErrors> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Null => Err(FieldErrors::single("is_active", "null", "must not be null")),
        _ => Err(FieldErrors::single("is_active", "type_error", "must be a boolean")),
    }
}

/// `POST /api/v1/items` body → [`NewItem`].
///
/// # Errors
/// Every field problem found.
pub fn new_item(body: &Map<String, Value>) -> Result<NewItem, FieldErrors> {
    let mut errors = FieldErrors::new();
    reject_unknown(body, &mut errors);
    let name = match body.get("name") {
        Some(value) => errors.collect(name(value)),
        None => {
            errors.push("name", "missing", "is required");
            None
        }
    };
    let description = body
        .get("description")
        .map_or(Some(None), |v| errors.collect(description(v)));
    let is_active = body
        .get("is_active")
        .map_or(Some(true), |v| errors.collect(is_active(v)));
    match (name, description, is_active) {
        (Some(name), Some(description), Some(is_active)) if errors.is_empty() => Ok(NewItem {
            name,
            description,
            is_active,
        }),
        _ => Err(errors),
    }
}

/// `PATCH /api/v1/items/{id}` body → [`ItemPatch`].
///
/// # Errors
/// Every field problem found.
pub fn item_patch(body: &Map<String, Value>) -> Result<ItemPatch, FieldErrors> {
    let mut errors = FieldErrors::new();
    reject_unknown(body, &mut errors);
    let patch = ItemPatch {
        name: body.get("name").and_then(|v| errors.collect(name(v))),
        description: body.get("description").and_then(|v| errors.collect(description(v))),
        is_active: body.get("is_active").and_then(|v| errors.collect(is_active(v))),
    };
    errors.into_result().map(|()| patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn fields(errors: &FieldErrors) -> Vec<(&str, &str)> {
        errors
            .as_slice()
            .iter()
            .map(|e| (e.field.as_str(), e.kind.as_str()))
            .collect()
    }

    #[test]
    fn a_minimal_item_defaults_to_active_without_description() {
        let item = new_item(&obj(json!({"name": "  Desk  "}))).unwrap();
        assert_eq!(item.name.as_str(), "Desk");
        assert_eq!(item.description, None);
        assert!(item.is_active);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = new_item(&obj(
            json!({"owner_id": "x", "description": 3, "is_active": "yes", "extra": 1}),
        ))
        .unwrap_err();
        let mut got = fields(&errors);
        got.sort_unstable();
        assert_eq!(
            got,
            vec![
                ("description", "type_error"),
                ("extra", "unknown_field"),
                ("is_active", "type_error"),
                ("name", "missing"),
                ("owner_id", "unknown_field"),
            ]
        );
    }

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let patch = item_patch(&obj(json!({"description": null}))).unwrap();
        assert_eq!(patch.description, Some(None), "null clears");
        assert_eq!(patch.name, None, "absent leaves alone");
        let patch = item_patch(&obj(json!({}))).unwrap();
        assert_eq!(patch, ItemPatch::default());
        let errors = item_patch(&obj(json!({"name": null, "is_active": null}))).unwrap_err();
        assert_eq!(fields(&errors), vec![("name", "null"), ("is_active", "null")]);
    }

    #[test]
    fn the_id_cannot_be_patched() {
        let errors = item_patch(&obj(json!({"id": "00000000-0000-0000-0000-000000000000"}))).unwrap_err();
        assert_eq!(fields(&errors), vec![("id", "unknown_field")]);
    }
}
