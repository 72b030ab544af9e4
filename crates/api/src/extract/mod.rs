//! Extractors: the signed-in user and JSON bodies.

pub mod current_user;
pub mod json_body;

pub use current_user::CurrentUser;
pub use json_body::{BodyConfig, JsonBody};
