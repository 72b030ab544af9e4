//! `Idempotency-Key` on creates (see `domain::idempotency`): the HTTP side.
//!
//! - The key is 1–255 visible ASCII characters (else 400), scoped to the
//!   caller, and bound to the body's exact bytes.
//! - The first request claims it, acts, and its answer (status and body) is
//!   kept 24 h; a retry with the same body replays it with
//!   `Idempotent-Replayed: true` and acts no more; the same key with another
//!   body is 422; a retry while the first is still being processed is 409.
//! - If the claim cannot be checked (database unreachable) the request is
//!   refused with 503 rather than risking a second create. A request that
//!   fails (an error answer) releases its claim, so the client can retry.
//! - Once claimed, the create and the storing of its answer run in a task of
//!   their own: a client that disconnects mid-way (actix then drops the
//!   handler) cannot leave the key claimed-but-unanswered, which would turn
//!   every retry into a 409 until the key expires.
//! - The header is ignored on GET, PATCH and DELETE (they are idempotent, or
//!   conditional with `If-Match`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use domain::idempotency::{Claim, StoredAnswer};
use domain::validation::FieldErrors;

use crate::error::{ApiError, ErrorType};
use crate::state::AppState;

pub use crate::headers::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};

/// The request's key, if it sent one.
///
/// # Errors
/// 400 when it is not 1–255 visible ASCII characters (or sent twice).
pub fn key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(&IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if values.next().is_some()
        || bytes.is_empty()
        || bytes.len() > 255
        || !bytes.iter().all(|b| (0x21..=0x7E).contains(b))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be one header of 1-255 visible ASCII characters",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The kept answer as HTTP: a 201 says where and what (`Location`, `ETag`),
/// as the first answer did.
fn answer(collection: &str, status: u16, body: Vec<u8>) -> HttpResponse {
    if status == StatusCode::CREATED.as_u16() {
        return crate::conditional::created(collection, body);
    }
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .content_type(header::ContentType::json())
        .body(body)
}

/// Runs `act` at most once per (scope, key, body): see the module docs.
///
/// # Errors
/// 409, 422 or 503 as above; `act`'s own error.
pub async fn run(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    scope: &str,
    key: &str,
    fingerprint: &str,
    act: impl Future<Output = Result<(u16, Vec<u8>), ApiError>> + 'static,
) -> Result<HttpResponse, ApiError> {
    match state.idempotency.claim(scope, key, fingerprint).await? {
        Claim::Claimed => {
            let (state, scope, key) = (state.clone(), scope.to_owned(), key.to_owned());
            let task = actix_web::rt::spawn(async move {
                let outcome = act.await;
                match &outcome {
                    Ok((status, body)) => {
                        let stored = StoredAnswer {
                            status: *status,
                            body: body.clone(),
                        };
                        if let Err(error) = state.idempotency.complete(&scope, &key, &stored).await {
                            tracing::warn!(error = %error, "could not keep an idempotent answer; a retry will get 409 until the key expires");
                        }
                    }
                    Err(_) => {
                        if let Err(release) = state.idempotency.abandon(&scope, &key).await {
                            tracing::warn!(error = %release, "could not release an idempotency claim");
                        }
                    }
                }
                outcome
            });
            let (status, body) = task
                .await
                .map_err(|e| ApiError::internal(anyhow::anyhow!("idempotent create task failed: {e}")))??;
            Ok(answer(req.path(), status, body))
        }
        Claim::Replay(stored) => {
            let mut response = answer(req.path(), stored.status, stored.body);
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
            Ok(response)
        }
        Claim::InProgress => Err(ApiError::of_type(
            ErrorType::IdempotencyInProgress,
            "A request with this Idempotency-Key is still being processed; retry later",
        )),
        Claim::Mismatch => Err(ApiError::validation(FieldErrors::single(
            "Idempotency-Key",
            "idempotency_mismatch",
            "was already used with a different body",
        ))
        .with_type(ErrorType::IdempotencyKeyReused)),
    }
}
