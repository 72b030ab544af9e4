//! A panic in a handler becomes a 500 in the JSON envelope instead of a
//! dropped connection. Mounted on each resource (after routing), because
//! keeping a handle on the request needs routing to be done: by
//! `app::api_resource`, which makes every `/api/v1` resource.

use std::panic::AssertUnwindSafe;

use actix_web::Error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use futures_util::FutureExt as _;

use crate::error::ApiError;

/// The middleware function.
///
/// # Errors
/// Only what inner services return as `Err`.
pub async fn catch_panic(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request = req.request().clone();
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(result) => result.map(ServiceResponse::map_into_boxed_body),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let error = ApiError::internal(anyhow::anyhow!("handler panicked: {message}"));
            Ok(ServiceResponse::from_err(error, request))
        }
    }
}
