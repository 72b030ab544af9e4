//! Items: the application's own resource, owned by a better-auth user.

pub mod model;
pub mod port;
pub mod rules;
pub mod service;

pub use model::{Item, ItemChanges, ItemDescription, ItemId, ItemName, ItemPatch, NewItem, Page, Position};
pub use port::ItemRepository;
pub use service::{ItemService, Precondition, RESOURCE};
