//! Extractors: the signed-in user, their scope, and JSON bodies.

pub mod caller;
pub mod current_user;
pub mod json_body;

pub use caller::Caller;
pub use current_user::CurrentUser;
pub use json_body::{BodyConfig, JsonBody};
