//! Middleware, one concern per file. Order (outermost first) is set in
//! `app.rs`: request context (ids, envelope), security
//! headers, access log, CORS, rate limit; panics are caught per resource.

pub mod access_log;
pub mod catch_panic;
pub mod client_ip;
pub mod cors;
pub mod rate_limit;
pub mod request_context;
pub mod security_headers;
