//! Pages of a list, for every resource: by offset (`skip`) or by keyset
//! (`after` a [`Position`], which keeps pages stable while rows are added).
//! The default order is newest first: `created_at`, then the id, both
//! descending; a page's [`ListQuery`] may ask for another, and a filter.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::resource::list::ListQuery;
use crate::validation::FieldErrors;

/// Largest page a list may ask for.
pub const LIMIT_MAX: u64 = 1000;
/// Page size when the client does not say.
pub const LIMIT_DEFAULT: u64 = 100;

/// A resource's identifier: a UUID underneath (what cursors carry).
pub trait RecordId: Copy + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static {
    /// The UUID.
    fn as_uuid(&self) -> Uuid;
    /// The id of a UUID read back (from a cursor this service signed).
    fn from_uuid(id: Uuid) -> Self;
}

/// The value of the sort field at a keyset position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// `created_at` or `updated_at`.
    Time(DateTime<Utc>),
    /// A text field.
    Text(String),
}

/// Where a keyset page starts: strictly after this row in the list's order
/// (its sort field, then `id`, both in the sort's direction).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position<Id> {
    /// The sort field's value in the last row of the previous page.
    pub key: SortKey,
    /// Its id (ties on the sort field are ordered by id).
    pub id: Id,
}

/// A window into a list (by offset, `skip`, or by keyset, `after`) in the
/// order and with the filter of its [`ListQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<P> {
    skip: u64,
    limit: u64,
    after: Option<P>,
    query: ListQuery,
}

impl<P> Page<P> {
    /// Validates `skip ≥ 0` (and small enough for SQL's `OFFSET`) and `1 ≤ limit ≤ 1000`;
    /// a missing limit means 100, a missing skip 0. Newest first, unfiltered.
    ///
    /// # Errors
    /// Field errors on `skip` and/or `limit`.
    pub fn new(skip: Option<i64>, limit: Option<i64>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let skip = skip.unwrap_or(0);
        if skip < 0 {
            errors.push("skip", "out_of_range", "must be greater than or equal to 0");
        }
        let limit = limit.unwrap_or(LIMIT_DEFAULT as i64);
        if !(1..=LIMIT_MAX as i64).contains(&limit) {
            errors.push("limit", "out_of_range", format!("must be between 1 and {LIMIT_MAX}"));
        }
        errors.into_result()?;
        Ok(Self {
            skip: skip as u64,
            limit: limit as u64,
            after: None,
            query: ListQuery::default(),
        })
    }

    /// The same page size, starting after `position` (keyset; no skip).
    #[must_use]
    pub fn starting_after(self, position: Option<P>) -> Self {
        Self {
            skip: 0,
            after: position,
            ..self
        }
    }

    /// The same window of the list ordered and filtered by `query`.
    #[must_use]
    pub fn with_query(self, query: ListQuery) -> Self {
        Self { query, ..self }
    }

    /// One more row than asked for: a service fetches it to learn whether a
    /// next page exists.
    #[must_use]
    pub fn with_one_more(self) -> Self {
        Self {
            limit: self.limit + 1,
            ..self
        }
    }

    /// Where a keyset page starts, if it is one.
    pub fn after(&self) -> Option<&P> {
        self.after.as_ref()
    }

    /// The list's order and filter.
    pub fn query(&self) -> &ListQuery {
        &self.query
    }

    /// How many rows to pass over.
    pub fn skip(&self) -> u64 {
        self.skip
    }

    /// How many rows to return at most.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl<P> Default for Page<P> {
    fn default() -> Self {
        Self {
            skip: 0,
            limit: LIMIT_DEFAULT,
            after: None,
            query: ListQuery::default(),
        }
    }
}
