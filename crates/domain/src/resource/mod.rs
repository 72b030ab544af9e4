//! The scoped-resource pattern: what every resource of this service is.
//!
//! A record belongs to a scope — a user's personal records, or one
//! organization's (see [`crate::scope`]) — and is created by a user (its
//! `owner_id`). Every member of an organization reads all of its records and
//! may create; changing or deleting one is for its creator and for members
//! whose roles include `owner` or `admin`. Ids, owners, scopes and
//! timestamps are decided by [`ScopedService`], never by the client or by
//! storage; storage ([`ScopedRepository`]) is asked for one scope at a time.
//!
//! A resource declares its record type ([`Record`]: its name, what a client
//! gives to create and to change one), and gets lists (offset and keyset
//! pages), reads, creates, updates and deletes — plain or conditional on the
//! stored state ([`Precondition`], HTTP `If-Match`) — and every successful
//! write reported to a [`crate::change::ChangeObserver`].

mod id;
pub mod list;
mod port;
mod service;

use chrono::{DateTime, Utc};

pub use id::Id;
#[cfg(any(test, feature = "mocks"))]
pub use port::MockScopedRepository;
pub use port::ScopedRepository;
pub use service::{Precondition, ScopedService};

use crate::page::{Page, Position, SortKey};
use list::{ListSpec, Sort, SortField};

/// A record of a scoped resource.
pub trait Record: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// The resource's name: what API-key permissions (`{"items": ["read"]}`),
    /// change reports and cache namespaces call it.
    const RESOURCE: &'static str;
    /// What a client gives to create one (validated).
    type New: Send + 'static;
    /// A partial update (validated).
    type Patch: Send + Sync + 'static;

    /// The record's id.
    fn id(&self) -> Id<Self>;
    /// The better-auth user who created it (its owner, in personal scope).
    fn owner_id(&self) -> &str;
    /// The organization it belongs to; `None` for a personal record.
    fn organization_id(&self) -> Option<&str>;
    /// When it was created.
    fn created_at(&self) -> DateTime<Utc>;
    /// When it was last changed.
    fn updated_at(&self) -> DateTime<Utc>;
    /// The record made of a client's `new` and what the service decided.
    fn create(new: Self::New, origin: Origin<Self>) -> Self;

    /// What its lists may be sorted and filtered by (beyond `created_at`,
    /// `updated_at`, `created_after` and `created_before`).
    const LIST: ListSpec = ListSpec::BASIC;

    /// The value of text field `field` (what a keyset position of a text
    /// sort carries); `None` for a field that is not text or not there.
    fn sort_text(&self, field: &str) -> Option<&str>;
}

/// A point in time, as records keep them.
pub type Timestamp = DateTime<Utc>;

/// Implements [`Record`] for a struct with the scoped fields (`id`,
/// `owner_id`, `organization_id`, `created_at`, `updated_at`) and the
/// resource's own `fields`, each of which its `New` type has too:
///
/// ```ignore
/// domain::scoped_record!(Item { resource: "items", new: NewItem, patch: ItemPatch, fields: [name, description, is_active] });
/// ```
#[macro_export]
macro_rules! scoped_record {
    ($record:ident {
        resource: $resource:expr,
        new: $new:ident,
        patch: $patch:ident,
        fields: [$($field:ident),* $(,)?]
        $(, list: $list:expr)? $(,)?
    }) => {
        impl $crate::resource::Record for $record {
            const RESOURCE: &'static str = $resource;
            type New = $new;
            type Patch = $patch;
            $(const LIST: $crate::resource::list::ListSpec = $list;)?

            fn sort_text(&self, field: &str) -> Option<&str> {
                match field {
                    $(stringify!($field) => $crate::resource::list::FieldText::field_text(&self.$field),)*
                    _ => None,
                }
            }

            fn id(&self) -> $crate::resource::Id<Self> {
                self.id
            }

            fn owner_id(&self) -> &str {
                &self.owner_id
            }

            fn organization_id(&self) -> Option<&str> {
                self.organization_id.as_deref()
            }

            fn created_at(&self) -> $crate::resource::Timestamp {
                self.created_at
            }

            fn updated_at(&self) -> $crate::resource::Timestamp {
                self.updated_at
            }

            fn create(new: $new, origin: $crate::resource::Origin<Self>) -> Self {
                Self {
                    id: origin.id,
                    $($field: new.$field,)*
                    owner_id: origin.owner_id,
                    organization_id: origin.organization_id,
                    created_at: origin.at,
                    updated_at: origin.at,
                }
            }
        }
    };
}

/// What the service decides for a new record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin<R> {
    /// A fresh, time-ordered id.
    pub id: Id<R>,
    /// The caller.
    pub owner_id: String,
    /// The caller's organization scope, if any.
    pub organization_id: Option<String>,
    /// Now: the record's `created_at` and `updated_at`.
    pub at: DateTime<Utc>,
}

/// Where a keyset page of `R` starts.
pub type RecordPosition<R> = Position<Id<R>>;

/// A window into a list of `R`.
pub type RecordPage<R> = Page<RecordPosition<R>>;

impl<R: Record> Position<Id<R>> {
    /// The position just after `record` in a list sorted by `sort`.
    pub fn after(record: &R, sort: Sort) -> Self {
        let key = match sort.field {
            SortField::CreatedAt => SortKey::Time(record.created_at()),
            SortField::UpdatedAt => SortKey::Time(record.updated_at()),
            SortField::Text(field) => SortKey::Text(record.sort_text(field).unwrap_or_default().to_owned()),
        };
        Self { key, id: record.id() }
    }
}

/// A patch with the time it is applied: what a repository writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<P> {
    /// The fields to change.
    pub patch: P,
    /// The new `updated_at`.
    pub updated_at: DateTime<Utc>,
    /// Write only if the stored `updated_at` is still this (optimistic
    /// concurrency: the check and the write are one statement).
    pub unless_changed_since: Option<DateTime<Utc>>,
}
