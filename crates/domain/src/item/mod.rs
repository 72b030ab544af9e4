//! Items: the application's own resource, owned by a better-auth user; a
//! [`crate::resource`] like any other (its use cases are
//! [`crate::resource::ScopedService`]'s).

pub mod model;

/// The rules of item fields (the kit's text rules).
pub use crate::fields::rules;

pub use crate::resource::Precondition;
pub use model::{
    ITEM_LIST, Item, ItemChanges, ItemDescription, ItemId, ItemName, ItemPatch, NewItem, Page, Position, RESOURCE,
};

/// The item use cases.
pub type ItemService = crate::resource::ScopedService<Item>;

/// The storage port of items.
pub use crate::resource::ScopedRepository;

/// A fake item storage for unit tests.
#[cfg(any(test, feature = "mocks"))]
pub type MockItemRepository = crate::resource::MockScopedRepository<Item>;
