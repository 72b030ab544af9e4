//! List queries: how a resource's list may be sorted and filtered, declared
//! once per resource ([`ListSpec`]), and a client's query checked against it
//! ([`ListQuery`]).
//!
//! Every resource sorts by `created_at` and `updated_at`; its spec adds the
//! text fields it sorts by, the boolean fields it filters on and the text
//! field `q` searches (a case-insensitive substring, matched literally).
//! Every resource filters by `created_after` / `created_before`. Ties are
//! broken by id, in the sort's direction, so keyset pages are stable.

use chrono::{DateTime, SecondsFormat, Utc};

/// Longest `q`, in characters after trimming.
pub const SEARCH_MAX: usize = 100;

/// What a resource's list may be sorted and filtered by, beyond
/// `created_at`, `updated_at`, `created_after` and `created_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListSpec {
    /// Text fields a list may be sorted by (each indexed with its scope).
    pub sort: &'static [&'static str],
    /// Boolean fields a list may be filtered on (`?<field>=true|false`).
    pub flags: &'static [&'static str],
    /// The text field `q` searches, if any.
    pub search: Option<&'static str>,
}

impl ListSpec {
    /// Only what every resource has.
    pub const BASIC: Self = Self {
        sort: &[],
        flags: &[],
        search: None,
    };

    /// Every value `sort` accepts, ascending then descending per field.
    pub fn sort_values(&self) -> Vec<String> {
        let mut fields = vec!["created_at", "updated_at"];
        fields.extend(self.sort.iter().copied());
        fields
            .iter()
            .flat_map(|field| [(*field).to_owned(), format!("-{field}")])
            .collect()
    }
}

/// A column a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    /// When the record was created.
    CreatedAt,
    /// When it last changed.
    UpdatedAt,
    /// One of the resource's text fields.
    Text(&'static str),
}

impl SortField {
    /// The field's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::Text(field) => field,
        }
    }
}

/// A list's order: a field, then the id, both in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sort {
    /// The field.
    pub field: SortField,
    /// Descending (the `-` prefix).
    pub descending: bool,
}

impl Default for Sort {
    /// Newest first.
    fn default() -> Self {
        Self {
            field: SortField::CreatedAt,
            descending: true,
        }
    }
}

impl Sort {
    /// Reads `sort`'s value (`name`, `-created_at`, …) against `spec`.
    ///
    /// # Errors
    /// `None` for anything `spec` does not list.
    pub fn parse(spec: &ListSpec, raw: &str) -> Option<Self> {
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        let field = match name {
            "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            other => SortField::Text(spec.sort.iter().copied().find(|field| *field == other)?),
        };
        Some(Self { field, descending })
    }

    /// As a `sort` value.
    pub fn param(&self) -> String {
        format!("{}{}", if self.descending { "-" } else { "" }, self.field.name())
    }
}

/// Which records a list keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Boolean fields that must have these values.
    pub flags: Vec<(&'static str, bool)>,
    /// The searched field and the text it must contain (any case, literally).
    pub search: Option<(&'static str, String)>,
    /// Created strictly after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub created_before: Option<DateTime<Utc>>,
}

/// A list's order and filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// The order.
    pub sort: Sort,
    /// The filter.
    pub filter: ListFilter,
}

impl ListQuery {
    /// Newest first, everything: the order the lanes batch.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// One text per distinct query (parameters in a fixed order, values
    /// normalised): what cursors are bound to and cache keys carry.
    pub fn canonical(&self) -> String {
        let mut out = format!("sort={}", self.sort.param());
        for (field, value) in &self.filter.flags {
            out.push_str(&format!("&{field}={value}"));
        }
        if let Some((_, text)) = &self.filter.search {
            out.push_str("&q=");
            out.extend(url_escaped(text));
        }
        for (name, at) in [
            ("created_after", self.filter.created_after),
            ("created_before", self.filter.created_before),
        ] {
            if let Some(at) = at {
                out.push_str(&format!("&{name}={}", at.to_rfc3339_opts(SecondsFormat::Micros, true)));
            }
        }
        out
    }
}

/// `text` with `%` and `&` escaped, so a canonical query reads back one way.
fn url_escaped(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().flat_map(|c| match c {
        '%' => "%25".chars().collect::<Vec<_>>(),
        '&' => "%26".chars().collect(),
        '=' => "%3D".chars().collect(),
        other => vec![other],
    })
}

/// A field's value as sortable text, if it is text a list may sort by
/// (what `scoped_record!` asks each field).
pub trait FieldText {
    /// The text; `None` for a field of another kind.
    fn field_text(&self) -> Option<&str>;
}

impl<F: crate::fields::Field> FieldText for crate::fields::ShortText<F> {
    fn field_text(&self) -> Option<&str> {
        Some(self.as_str())
    }
}

impl<F: crate::fields::Field> FieldText for Option<crate::fields::LongText<F>> {
    fn field_text(&self) -> Option<&str> {
        None
    }
}

impl FieldText for bool {
    fn field_text(&self) -> Option<&str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ListSpec = ListSpec {
        sort: &["name"],
        flags: &["is_active"],
        search: Some("name"),
    };

    #[test]
    fn sort_values_are_every_field_in_both_directions() {
        assert_eq!(
            SPEC.sort_values(),
            [
                "created_at",
                "-created_at",
                "updated_at",
                "-updated_at",
                "name",
                "-name"
            ]
        );
        assert_eq!(ListSpec::BASIC.sort_values().len(), 4);
    }

    #[test]
    fn only_declared_fields_sort() {
        assert_eq!(
            Sort::parse(&SPEC, "-name"),
            Some(Sort {
                field: SortField::Text("name"),
                descending: true
            })
        );
        assert_eq!(
            Sort::parse(&SPEC, "updated_at").map(|s| s.param()),
            Some("updated_at".into())
        );
        for bad in ["", "-", "description", ";drop", "--name", "+name", "Name", " name"] {
            assert_eq!(Sort::parse(&SPEC, bad), None, "{bad:?}");
        }
        assert_eq!(Sort::parse(&ListSpec::BASIC, "name"), None);
    }

    #[test]
    fn the_default_query_is_newest_first_and_canonical_texts_tell_queries_apart() {
        assert!(ListQuery::default().is_default());
        assert_eq!(ListQuery::default().canonical(), "sort=-created_at");
        let searching = |text: &str| ListQuery {
            filter: ListFilter {
                search: Some(("name", text.into())),
                ..ListFilter::default()
            },
            ..ListQuery::default()
        };
        assert!(!searching("a").is_default());
        assert_ne!(searching("a&is_active=true").canonical(), {
            let mut q = searching("a");
            q.filter.flags.push(("is_active", true));
            q.canonical()
        });
    }
}
