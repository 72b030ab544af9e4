//! The signed-in user and the scope they act in (`X-Organization-Id`, else
//! the session's active organization, else personal). The rules live in
//! [`domain::organization::OrganizationService`]; this only reads the header.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use domain::scope::OrganizationId;
use futures_util::future::LocalBoxFuture;

use super::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;

pub use crate::headers::X_ORGANIZATION_ID as ORGANIZATION_HEADER;

/// The authenticated caller in their scope.
#[derive(Debug, Clone)]
pub struct Caller(pub domain::scope::Caller);

fn bad_header(why: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, format!("X-Organization-Id {why}"))
}

/// The organization the request asks for, if any: one header of 1–255
/// characters of UTF-8 with no control character.
///
/// # Errors
/// 400 for anything else.
pub fn requested_organization(req: &HttpRequest) -> Result<Option<OrganizationId>, ApiError> {
    let mut values = req.headers().get_all(&ORGANIZATION_HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(bad_header("must be given once"));
    }
    let raw = std::str::from_utf8(value.as_bytes()).map_err(|_| bad_header("is not UTF-8"))?;
    OrganizationId::parse(raw).map(Some).map_err(bad_header)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let user = CurrentUser::from_request(&req, payload);
        Box::pin(async move {
            let CurrentUser(authenticated) = user.await?;
            let requested = requested_organization(&req)?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState is not registered")))?;
            let active = authenticated.active_organization_id.as_deref();
            let mut caller = state
                .organizations
                .caller(authenticated.user, requested, active)
                .await?;
            caller.permissions = authenticated.permissions;
            Ok(Self(caller))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_header_is_validated_before_any_lookup() {
        let parse = |values: &[&[u8]]| {
            let mut req = TestRequest::default();
            for v in values {
                req = req.append_header((
                    ORGANIZATION_HEADER.clone(),
                    actix_web::http::header::HeaderValue::from_bytes(v).unwrap(),
                ));
            }
            requested_organization(&req.to_http_request())
        };
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[b"org_1"]).unwrap().unwrap().as_str(), "org_1");
        assert_eq!(parse(&["équipe".as_bytes()]).unwrap().unwrap().as_str(), "équipe");
        for bad in [
            &[b"" as &[u8]][..],
            &[&[b'a'; 256]],
            &[b"a\tb"],
            &[b"\xff"],
            &[b"a", b"b"],
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(error.message().starts_with("X-Organization-Id"));
        }
    }
}
