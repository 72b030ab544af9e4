//! Middleware, one concern per file.

pub mod request_context;
