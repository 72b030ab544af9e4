//! Item entity and its validated value types.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::fields::rules::{LONG_TEXT_MAX_CHARS as DESCRIPTION_MAX_CHARS, SHORT_TEXT_MAX_CHARS as NAME_MAX_CHARS};
use crate::fields::{LongText, ShortText};
pub use crate::page::{LIMIT_DEFAULT, LIMIT_MAX};

/// An item's identifier (a UUID; v7, so ids sort by creation time).
pub type ItemId = crate::resource::Id<Item>;

crate::field!(
    /// The `name` field.
    pub NameField = "name"
);
crate::field!(
    /// The `description` field.
    pub DescriptionField = "description"
);

/// An item name: 1–255 characters once trimmed, no NUL, at least one
/// visible character ([`crate::fields::rules::short_text`]). Stored trimmed of
/// whitespace; format characters are kept as given.
pub type ItemName = ShortText<NameField>;

/// An item description: at most 65,535 characters, no NUL. Kept as written.
pub type ItemDescription = LongText<DescriptionField>;

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The item's id.
    pub id: ItemId,
    /// Its name.
    pub name: ItemName,
    /// Its optional description.
    pub description: Option<ItemDescription>,
    /// The better-auth user id of its owner (its creator, in an organization).
    pub owner_id: String,
    /// The organization it belongs to; `None` for a personal item.
    pub organization_id: Option<String>,
    /// Whether the item is active.
    pub is_active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a client may give when creating an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// The name.
    pub name: ItemName,
    /// The description, if any.
    pub description: Option<ItemDescription>,
    /// Whether the item starts active (default true).
    pub is_active: bool,
}

/// A partial update: `None` leaves a field alone. For the description,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemPatch {
    /// A new name.
    pub name: Option<ItemName>,
    /// A new description, or `Some(None)` to clear it.
    pub description: Option<Option<ItemDescription>>,
    /// A new active flag.
    pub is_active: Option<bool>,
}

/// A patch with the time it is applied: what a repository writes.
pub type ItemChanges = crate::resource::Changes<ItemPatch>;

/// Where a keyset page of items starts: strictly after (older than) this
/// item in the newest-first order (`created_at`, then `id`, both descending).
pub type Position = crate::resource::RecordPosition<Item>;

/// A window into the newest-first list of items.
pub type Page = crate::resource::RecordPage<Item>;

crate::scoped_record! {
    Item { resource: RESOURCE, new: NewItem, patch: ItemPatch, fields: [name, description, is_active], list: ITEM_LIST }
}

/// How item lists may be sorted and filtered: by name (besides the
/// timestamps), on `is_active`, and searched by name (`q`).
pub const ITEM_LIST: crate::resource::list::ListSpec = crate::resource::list::ListSpec {
    sort: &["name"],
    flags: &["is_active"],
    search: Some("name"),
};

/// The resource name API-key permissions (`{"items": […]}`), change reports
/// and cache namespaces use for items.
pub const RESOURCE: &str = "items";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldErrors;

    fn kind(result: Result<impl std::fmt::Debug, FieldErrors>) -> String {
        result.unwrap_err().as_slice()[0].kind.clone()
    }

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(ItemName::parse("  Widget \n").unwrap().as_str(), "Widget");
        assert_eq!(kind(ItemName::parse("   ")), "too_short");
        assert_eq!(kind(ItemName::parse("")), "too_short");
        assert!(ItemName::parse(&"é".repeat(255)).is_ok(), "255 two-byte characters fit");
        assert_eq!(kind(ItemName::parse(&"a".repeat(256))), "too_long");
        assert_eq!(kind(ItemName::parse("a\0b")), "nul_character");
    }

    #[test]
    fn names_of_only_invisible_characters_are_empty() {
        for invisible in ["\u{200B}", "\u{FEFF}", " \u{200C}\u{200D} ", "\u{2060}\t", "\u{00AD}"] {
            assert_eq!(kind(ItemName::parse(invisible)), "too_short", "{invisible:?}");
        }
        // Visible text keeps its format characters as given (ZWJ in an emoji).
        let family = "\u{1F468}\u{200D}\u{1F469}";
        assert_eq!(ItemName::parse(family).unwrap().as_str(), family);
        assert_eq!(ItemName::parse("\u{200B}a").unwrap().as_str(), "\u{200B}a");
    }

    #[test]
    fn descriptions_are_bounded_and_nul_free() {
        assert!(ItemDescription::parse("").is_ok());
        assert!(ItemDescription::parse(&"x".repeat(65_535)).is_ok());
        assert_eq!(kind(ItemDescription::parse(&"x".repeat(65_536))), "too_long");
        assert_eq!(kind(ItemDescription::parse("nul\0")), "nul_character");
    }

    #[test]
    fn pages_default_and_validate_both_bounds() {
        assert_eq!(Page::new(None, None).unwrap(), Page::default());
        assert_eq!(Page::new(Some(5), Some(1000)).unwrap().limit(), 1000);
        assert_eq!(Page::new(Some(-1), Some(0)).unwrap_err().as_slice().len(), 2);
        assert!(Page::new(None, Some(1001)).is_err());
        assert!(Page::new(Some(i64::MAX), Some(1)).is_ok());
    }
}
