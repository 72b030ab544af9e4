//! HTTP handlers, one file per resource.

pub mod fallback;
pub mod health;
pub mod item_body;
pub mod items;
pub mod organizations;
pub mod users;
