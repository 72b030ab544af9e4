//! Request bodies for items: plain structs, read from the body's fields
//! ([`FromFields`]), checked with `validator` against the domain's rules
//! ([`domain::item::rules`]), then converted once into domain requests.
//! The OpenAPI schemas are derived from these same types.
//!
//! Rules: `name` is a string of 1–255 characters after trimming (stored
//! trimmed), with at least one visible character; `description` a string
//! (≤ 65,535 characters) or null; `is_active` a boolean. Any other field —
//! `id` and `owner_id` included — is rejected. On PATCH an absent field is
//! left alone, `description: null` clears the description, and a null `name`
//! or `is_active` is an error. Every problem is reported, not just the first.

use domain::item::{ItemDescription, ItemName, ItemPatch, NewItem, rules};
use domain::validation::FieldErrors;
use validator::Validate;

use crate::extract::json_body::{Fields, FromFields};

/// The largest body a valid item can need: every character of a name and a
/// description written as a `\uXXXX\uXXXX` surrogate pair (12 bytes), plus
/// room for the keys, `is_active` and whitespace.
const ITEM_BODY_MAX_BYTES: usize = (rules::SHORT_TEXT_MAX_CHARS + rules::LONG_TEXT_MAX_CHARS) * 12 + 4096;

/// The body of `POST /api/v1/items`.
#[derive(Debug, Default, Validate, utoipa::ToSchema)]
#[schema(as = CreateItem)]
// Read by `FromFields`, not serde: this tells the schema that unknown fields are refused.
#[serde(deny_unknown_fields)]
pub struct CreateItemRequest {
    /// 1–255 characters once trimmed, not only invisible ones; stored trimmed.
    #[schema(min_length = 1, max_length = 255, example = "Desk lamp")]
    #[validate(custom(function = "rules::short_text"))]
    pub name: String,
    /// At most 65,535 characters.
    #[schema(max_length = 65535)]
    #[validate(custom(function = "rules::long_text"))]
    pub description: Option<String>,
    /// Defaults to true; not null.
    #[schema(default = true, nullable = false)]
    pub is_active: Option<bool>,
}

/// The body of `PATCH /api/v1/items/{id}`: absent fields are left alone;
/// `description: null` clears the description.
#[derive(Debug, Default, Validate, utoipa::ToSchema)]
#[schema(as = UpdateItem)]
#[serde(deny_unknown_fields)]
pub struct UpdateItemRequest {
    /// 1–255 characters once trimmed, not only invisible ones; not null.
    #[schema(min_length = 1, max_length = 255, nullable = false)]
    #[validate(custom(function = "rules::short_text"))]
    pub name: Option<String>,
    /// At most 65,535 characters, or null to clear.
    #[schema(value_type = Option<String>, max_length = 65535, nullable)]
    #[validate(custom(function = "rules::long_text"))]
    pub description: Option<Option<String>>,
    /// Not null.
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
}

const FIELDS: &[&str] = &["name", "description", "is_active"];

impl FromFields for CreateItemRequest {
    const FIELDS: &'static [&'static str] = FIELDS;
    const MAX_BYTES: usize = ITEM_BODY_MAX_BYTES;

    fn from_fields(mut fields: Fields, errors: &mut FieldErrors) -> Self {
        fields.require(errors, "name");
        Self {
            name: fields.string(errors, "name").unwrap_or_default(),
            description: fields.nullable_string(errors, "description").flatten(),
            is_active: fields.boolean(errors, "is_active"),
        }
    }
}

impl FromFields for UpdateItemRequest {
    const FIELDS: &'static [&'static str] = FIELDS;
    const MAX_BYTES: usize = ITEM_BODY_MAX_BYTES;

    fn from_fields(mut fields: Fields, errors: &mut FieldErrors) -> Self {
        Self {
            name: fields.string(errors, "name"),
            description: fields.nullable_string(errors, "description"),
            is_active: fields.boolean(errors, "is_active"),
        }
    }
}

impl TryFrom<CreateItemRequest> for NewItem {
    type Error = FieldErrors;

    fn try_from(body: CreateItemRequest) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.collect(ItemName::parse(&body.name));
        let description = errors.collect(body.description.as_deref().map(ItemDescription::parse).transpose());
        match (name, description) {
            (Some(name), Some(description)) => Ok(Self {
                name,
                description,
                is_active: body.is_active.unwrap_or(true),
            }),
            _ => Err(errors),
        }
    }
}

impl TryFrom<UpdateItemRequest> for ItemPatch {
    type Error = FieldErrors;

    fn try_from(body: UpdateItemRequest) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let patch = Self {
            name: body.name.and_then(|n| errors.collect(ItemName::parse(&n))),
            description: body
                .description
                .and_then(|d| errors.collect(d.as_deref().map(ItemDescription::parse).transpose())),
            is_active: body.is_active,
        };
        errors.into_result().map(|()| patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::json_body::parse_body;

    fn create(body: &str) -> Result<NewItem, FieldErrors> {
        let request: CreateItemRequest = parse_body(body.as_bytes()).map_err(|e| e.details().cloned().unwrap())?;
        NewItem::try_from(request)
    }

    fn patch(body: &str) -> Result<ItemPatch, FieldErrors> {
        let request: UpdateItemRequest = parse_body(body.as_bytes()).map_err(|e| e.details().cloned().unwrap())?;
        ItemPatch::try_from(request)
    }

    fn fields(errors: &FieldErrors) -> Vec<(&str, &str)> {
        let mut got: Vec<(&str, &str)> = errors
            .as_slice()
            .iter()
            .map(|e| (e.field.as_str(), e.kind.as_str()))
            .collect();
        got.sort_unstable();
        got
    }

    #[test]
    fn a_minimal_item_defaults_to_active_without_description() {
        let item = create(r#"{"name": "  Desk  "}"#).unwrap();
        assert_eq!(item.name.as_str(), "Desk");
        assert_eq!(item.description, None);
        assert!(item.is_active);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = create(r#"{"owner_id": "x", "description": 3, "is_active": "yes", "extra": 1}"#).unwrap_err();
        assert_eq!(
            fields(&errors),
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
    fn rule_and_type_errors_of_different_fields_come_together() {
        let long = "x".repeat(65_536);
        let errors = create(&format!(r#"{{"name": " ", "description": "{long}", "is_active": 1}}"#)).unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                ("description", "too_long"),
                ("is_active", "type_error"),
                ("name", "too_short")
            ]
        );
        let errors = create(r#"{"name": 5}"#).unwrap_err();
        assert_eq!(fields(&errors), vec![("name", "type_error")], "one error per field");
    }

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let p = patch(r#"{"description": null}"#).unwrap();
        assert_eq!(p.description, Some(None), "null clears");
        assert_eq!(p.name, None, "absent leaves alone");
        assert_eq!(patch("{}").unwrap(), ItemPatch::default());
        let errors = patch(r#"{"name": null, "is_active": null}"#).unwrap_err();
        assert_eq!(fields(&errors), vec![("is_active", "null"), ("name", "null")]);
        let errors = patch(r#"{"name": "\u200b", "description": "a\u0000"}"#).unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![("description", "nul_character"), ("name", "too_short")]
        );
    }

    #[test]
    fn the_id_cannot_be_patched() {
        let errors = patch(r#"{"id": "00000000-0000-0000-0000-000000000000"}"#).unwrap_err();
        assert_eq!(fields(&errors), vec![("id", "unknown_field")]);
        assert_eq!(errors.as_slice()[0].message, "is set by the server and cannot be given");
    }

    #[test]
    fn the_largest_valid_item_fits_the_body_limit() {
        let worst = format!(
            r#"{{"name": "{}", "description": "{}", "is_active": false}}"#,
            "\\ud83d\\ude00".repeat(rules::SHORT_TEXT_MAX_CHARS),
            "\\ud83d\\ude00".repeat(rules::LONG_TEXT_MAX_CHARS)
        );
        assert!(worst.len() <= ITEM_BODY_MAX_BYTES);
        assert!(create(&worst).is_ok());
    }
}
