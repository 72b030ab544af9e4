//! The signed-in user, from any better-auth credential: the session cookie,
//! `Authorization: Bearer` (a session token, or a JWT of the jwt plugin), or
//! an API key of the api-key plugin (`x-api-key`, `API_KEY_HEADER`).
//!
//! The `Cookie` header is parsed here rather than by the framework so the
//! value is percent-decoded exactly once, by the signature check, as
//! better-auth does. The `__Secure-` cookie wins over the plain one, a cookie
//! over `Authorization: Bearer`, which wins over an API key. better-auth's
//! `session_data` cookie (its cookie cache) is deliberately ignored: it would
//! keep revoked sessions alive.
//!
//! An `Authorization` or API-key header sent twice is refused (400): which
//! one was meant is ambiguous, and silently taking the first would let a
//! proxy's header and a client's disagree unseen.
//!
//! An API key's permissions are checked here, before the key is metered
//! (better-auth's order), against the resource the route declares with
//! [`PermissionResource`] and the action its method means: a refused request
//! spends none of the key's `remaining` uses, and an `Idempotency-Key` replay
//! is never served to a key that may not make the request itself.
//!
//! CSRF, as better-auth guards its own routes: a cookie-authenticated POST,
//! PUT, PATCH or DELETE whose `Origin` (or, lacking it, `Referer`) names an
//! origin outside `FRONTEND_URL` is refused with 403 before the session is
//! even looked up. Bearer-authenticated calls (no ambient credential) and
//! requests with neither header (non-browser clients) are not affected.

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use domain::auth::api_key::Access;
use domain::auth::{Authenticated, Credential, CredentialKind};
use domain::error::AuthFailure;
use domain::user::User;
use futures_util::future::LocalBoxFuture;

use crate::error::ApiError;
use crate::state::{AppState, CookieNames, SecurityPolicy};

/// The authenticated caller: the user, their session's active organization
/// (organization plugin), the kind of credential, and an API key's permissions.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Authenticated);

impl CurrentUser {
    /// The signed-in user.
    pub fn user(&self) -> &User {
        &self.0.user
    }
}

/// The id of the authenticated caller and how they authenticated, left in
/// the request's extensions for logs.
#[derive(Debug, Clone)]
pub struct AuthenticatedUserId(pub String, pub CredentialKind);

/// The name better-auth's API-key permissions use for the resource a route
/// serves (`items`): set on the route with `.app_data(PermissionResource("items"))`.
/// Routes without it (the user's own profile, their organizations) need no permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionResource(pub &'static str);

/// The permission a request needs on its route's resource: GET/HEAD `read`,
/// POST `create`, PUT/PATCH `update`, DELETE `delete`.
fn access(req: &HttpRequest) -> Option<Access<'static>> {
    let PermissionResource(resource) = *req.app_data::<PermissionResource>()?;
    let action = match *req.method() {
        Method::POST => "create",
        Method::PUT | Method::PATCH => "update",
        Method::DELETE => "delete",
        _ => "read",
    };
    Some(Access { resource, action })
}

/// 400 when `name` is sent more than once.
fn once(req: &HttpRequest, name: &header::HeaderName) -> Result<(), ApiError> {
    if req.headers().get_all(name).nth(1).is_some() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            format!("{name} must be sent once"),
        ));
    }
    Ok(())
}

/// How the caller presented their credential (CSRF rules differ).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Presented {
    Cookie(String),
    Bearer(String),
    ApiKey(String),
}

impl Presented {
    /// How the credential arrived (a bearer may be a session token or a JWT).
    fn kind(&self) -> &'static str {
        match self {
            Self::Cookie(_) => "cookie",
            Self::Bearer(_) => "bearer",
            Self::ApiKey(_) => "api_key",
        }
    }
}

fn find_cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

fn presented(req: &HttpRequest, names: &CookieNames) -> Option<Presented> {
    session_or_bearer(req, names).or_else(|| {
        // Not `to_str`: a key with bytes outside visible ASCII is refused by
        // the domain's shape check, with a reason in the log, not as "missing".
        let value = req.headers().get(&names.api_key)?;
        Some(Presented::ApiKey(
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        ))
    })
}

fn session_or_bearer(req: &HttpRequest, names: &CookieNames) -> Option<Presented> {
    let cookie_value = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|h| h.to_str().ok())
        .find_map(|h| find_cookie(h, &names.secure).or_else(|| find_cookie(h, &names.plain)));
    if let Some(value) = cookie_value.filter(|v| !v.is_empty()) {
        return Some(Presented::Cookie(value.to_owned()));
    }
    let authorization = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| Presented::Bearer(token.to_owned()))
}

/// The origin a browser says the request comes from: `Origin`, else the
/// scheme://host[:port] of `Referer`.
fn request_origin(req: &HttpRequest) -> Option<String> {
    if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return Some(origin.to_owned());
    }
    let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    Some(url.origin().ascii_serialization())
}

fn cross_site_write(req: &HttpRequest, security: &SecurityPolicy) -> bool {
    let unsafe_method = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    unsafe_method && request_origin(req).is_some_and(|origin| !security.is_trusted_origin(&origin))
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState is not registered")))?;
            once(&req, &header::AUTHORIZATION)?;
            once(&req, &state.cookies.api_key)?;
            let credential =
                presented(&req, &state.cookies).ok_or_else(|| ApiError::unauthorized(AuthFailure::Missing.as_str()))?;
            if matches!(credential, Presented::Cookie(_)) && cross_site_write(&req, &state.security) {
                return Err(ApiError::csrf(
                    "cross-site request with a session cookie: its Origin (or Referer) is not in FRONTEND_URL",
                ));
            }
            // Inside a traced request only (an unsampled one opens no span at all).
            let span = if !infra::db::in_traced_request() {
                tracing::Span::none()
            } else {
                tracing::info_span!(
                    target: "otel",
                    "authenticate",
                    saas.presented = credential.kind(),
                    saas.outcome = tracing::field::Empty,
                    saas.session_cache = tracing::field::Empty,
                )
            };
            let authenticated = tracing::Instrument::instrument(
                async {
                    match &credential {
                        Presented::Cookie(value) => state.auth.authenticate(Credential::Cookie(value)).await,
                        Presented::Bearer(value) => state.auth.authenticate(Credential::Bearer(value)).await,
                        Presented::ApiKey(value) => {
                            state
                                .auth
                                .authenticate_for(Credential::ApiKey(value), access(&req))
                                .await
                        }
                    }
                },
                span.clone(),
            )
            .await;
            span.record(
                "saas.outcome",
                if authenticated.is_ok() { "accepted" } else { "refused" },
            );
            let authenticated = authenticated?;
            req.extensions_mut().insert(AuthenticatedUserId(
                authenticated.user.id.clone(),
                authenticated.credential,
            ));
            Ok(CurrentUser(authenticated))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn names() -> CookieNames {
        CookieNames::new("better-auth")
    }

    #[test]
    fn the_secure_cookie_wins_then_the_plain_one_then_bearer() {
        let req = TestRequest::default()
            .insert_header((
                header::COOKIE,
                "a=1; better-auth.session_token=plain; __Secure-better-auth.session_token=secure",
            ))
            .insert_header((header::AUTHORIZATION, "Bearer tok"))
            .to_http_request();
        assert_eq!(presented(&req, &names()), Some(Presented::Cookie("secure".into())));

        let req = TestRequest::default()
            .insert_header((header::COOKIE, "better-auth.session_token=plain%3D"))
            .to_http_request();
        assert_eq!(
            presented(&req, &names()),
            Some(Presented::Cookie("plain%3D".into())),
            "value stays encoded"
        );

        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "bearer tok"))
            .to_http_request();
        assert_eq!(presented(&req, &names()), Some(Presented::Bearer("tok".into())));
    }

    #[test]
    fn an_api_key_counts_only_without_a_cookie_or_bearer_and_its_header_is_configurable() {
        let req = TestRequest::default()
            .insert_header(("x-api-key", "raw-key"))
            .to_http_request();
        assert_eq!(presented(&req, &names()), Some(Presented::ApiKey("raw-key".into())));
        let req = TestRequest::default()
            .insert_header(("x-api-key", "raw-key"))
            .insert_header((header::AUTHORIZATION, "Bearer tok"))
            .to_http_request();
        assert_eq!(presented(&req, &names()), Some(Presented::Bearer("tok".into())));
        let custom = names().with_api_key_header(header::HeaderName::from_static("x-service-key"));
        let req = TestRequest::default()
            .insert_header(("x-service-key", "k"))
            .insert_header(("x-api-key", "ignored"))
            .to_http_request();
        assert_eq!(presented(&req, &custom), Some(Presented::ApiKey("k".into())));
    }

    #[test]
    fn the_cookie_cache_and_other_schemes_are_not_credentials() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "better-auth.session_data=abc"))
            .insert_header((header::AUTHORIZATION, "Basic dXNlcjpwYXNz"))
            .to_http_request();
        assert_eq!(presented(&req, &names()), None);
    }

    #[test]
    fn only_unsafe_methods_from_foreign_origins_are_cross_site_writes() {
        let policy = SecurityPolicy {
            frontend_origins: vec!["https://app.example.com".into()],
            ..SecurityPolicy::default()
        };
        let check = |method: Method, headers: &[(&str, &str)]| {
            let mut req = TestRequest::default().method(method);
            for (k, v) in headers {
                req = req.insert_header((*k, *v));
            }
            cross_site_write(&req.to_http_request(), &policy)
        };
        assert!(check(Method::POST, &[("origin", "https://evil.example")]));
        assert!(check(Method::DELETE, &[("referer", "https://evil.example/page?x=1")]));
        assert!(!check(Method::POST, &[("origin", "https://app.example.com")]));
        assert!(!check(Method::PATCH, &[("referer", "https://app.example.com/items/1")]));
        assert!(
            !check(Method::POST, &[]),
            "no Origin and no Referer: not a browser form post"
        );
        assert!(
            !check(Method::GET, &[("origin", "https://evil.example")]),
            "reads are left to CORS"
        );
        assert!(
            check(Method::POST, &[("origin", "null")]),
            "an opaque origin is not trusted"
        );
    }

    #[test]
    fn a_custom_cookie_prefix_is_honoured() {
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "myapp.session_token=v"))
            .to_http_request();
        assert_eq!(
            presented(&req, &CookieNames::new("myapp")),
            Some(Presented::Cookie("v".into()))
        );
        assert_eq!(presented(&req, &names()), None);
    }
}
