//! The storage port of a scoped resource.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Changes, Id, Record, RecordPage};
use crate::error::Error;
use crate::scope::Owner;

/// Persistent storage of `R`. Every read and write is scoped to an
/// [`Owner`]: a user's personal records (no organization) or one
/// organization's; an implementation must never return or change a record
/// outside it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ScopedRepository<R: Record>: Send + Sync {
    /// The owner's records, newest first (`created_at` then `id`, both
    /// descending), after `page.after()` when set (keyset) or skipping
    /// `page.skip()`, and at most `page.limit()` of them.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when storage cannot be reached, [`Error::Unexpected`] otherwise.
    async fn list(&self, owner: &Owner, page: RecordPage<R>) -> Result<Vec<R>, Error>;

    /// The record with this id if it is `owner`'s; `Ok(None)` otherwise.
    ///
    /// # Errors
    /// As [`ScopedRepository::list`].
    async fn find(&self, owner: &Owner, id: Id<R>) -> Result<Option<R>, Error>;

    /// Stores a new record exactly as given.
    ///
    /// # Errors
    /// As [`ScopedRepository::list`], and [`Error::Unauthenticated`]
    /// (`UnknownUser`) when its owner is no longer a user (deleted while a
    /// credential naming them, such as a JWT, was still being accepted).
    async fn insert(&self, record: &R) -> Result<(), Error>;

    /// Applies `changes` to the record if it is `owner`'s (and, with
    /// `changes.unless_changed_since`, only if its `updated_at` is still that,
    /// in the same statement) and returns the record as stored afterwards;
    /// `Ok(None)` when there is no such record or it has changed.
    ///
    /// # Errors
    /// As [`ScopedRepository::list`].
    async fn update(&self, owner: &Owner, id: Id<R>, changes: &Changes<R::Patch>) -> Result<Option<R>, Error>;

    /// Deletes the record if it is `owner`'s; returns whether one was deleted.
    ///
    /// # Errors
    /// As [`ScopedRepository::list`].
    async fn delete(&self, owner: &Owner, id: Id<R>) -> Result<bool, Error>;

    /// Deletes the record if it is `owner`'s and its `updated_at` is still
    /// `updated_at` (one statement); returns whether one was deleted.
    ///
    /// # Errors
    /// As [`ScopedRepository::list`].
    async fn delete_unchanged(&self, owner: &Owner, id: Id<R>, updated_at: DateTime<Utc>) -> Result<bool, Error>;
}
