//! A JSON object body, read within `MAX_REQUEST_SIZE`.
//!
//! Bodies are read by the framework's `Bytes` extractor, whose limit
//! (`PayloadConfig`, set from `MAX_REQUEST_SIZE`) counts the bytes actually
//! read, so a chunked body without `Content-Length` is cut off too (413).
//! The object is then handed to typed converters that report every field
//! problem at once, which serde's first-error-wins derive cannot do.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use domain::validation::FieldErrors;
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A request body that is a JSON object.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

fn is_json(req: &HttpRequest) -> bool {
    let Some(Ok(content_type)) = req.headers().get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses bytes as a JSON object.
///
/// # Errors
/// 400 for malformed JSON, 422 for valid JSON that is not an object.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::validation(FieldErrors::single(
            "body",
            "type_error",
            "must be a JSON object",
        ))),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Malformed JSON: {error}"),
        )),
    }
}

impl FromRequest for JsonObject {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json(req) {
            let error = ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            );
            return Box::pin(async move { Err(error.into()) });
        }
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await?;
            Ok(Self(parse_object(&bytes)?))
        })
    }
}
