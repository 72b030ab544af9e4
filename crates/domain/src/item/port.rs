//! The storage port for items.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::model::{Item, ItemChanges, ItemId, Page};
use crate::error::Error;
use crate::scope::Owner;

/// Persistent storage of items. Every read and write is scoped to an
/// [`Owner`]: a user's personal items (no organization) or one
/// organization's; an implementation must never return or change an item
/// outside it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ItemRepository: Send + Sync {
    /// The owner's items, newest first (`created_at` then `id`, both descending),
    /// after `page.after()` when set (keyset) or skipping `page.skip()`, and
    /// at most `page.limit()` of them.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when storage cannot be reached, [`Error::Unexpected`] otherwise.
    async fn list(&self, owner: &Owner, page: Page) -> Result<Vec<Item>, Error>;

    /// The item with this id if it is `owner`'s; `Ok(None)` otherwise.
    ///
    /// # Errors
    /// As [`ItemRepository::list`].
    async fn find(&self, owner: &Owner, id: ItemId) -> Result<Option<Item>, Error>;

    /// Stores a new item exactly as given.
    ///
    /// # Errors
    /// As [`ItemRepository::list`], and [`Error::Unauthenticated`]
    /// (`UnknownUser`) when its owner is no longer a user (deleted while a
    /// credential naming them, such as a JWT, was still being accepted).
    async fn insert(&self, item: &Item) -> Result<(), Error>;

    /// Applies `changes` to the item if it is `owner`'s (and, with
    /// `changes.unless_changed_since`, only if its `updated_at` is still that,
    /// in the same statement) and returns the item as stored afterwards;
    /// `Ok(None)` when there is no such item or it has changed.
    ///
    /// # Errors
    /// As [`ItemRepository::list`].
    async fn update(&self, owner: &Owner, id: ItemId, changes: &ItemChanges) -> Result<Option<Item>, Error>;

    /// Deletes the item if it is `owner`'s; returns whether one was deleted.
    ///
    /// # Errors
    /// As [`ItemRepository::list`].
    async fn delete(&self, owner: &Owner, id: ItemId) -> Result<bool, Error>;

    /// Deletes the item if it is `owner`'s and its `updated_at` is still
    /// `updated_at` (one statement); returns whether one was deleted.
    ///
    /// # Errors
    /// As [`ItemRepository::list`].
    async fn delete_unchanged(&self, owner: &Owner, id: ItemId, updated_at: DateTime<Utc>) -> Result<bool, Error>;
}
