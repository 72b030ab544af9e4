//! `GET /api/v1/users/me`.

use actix_web::web::Json;
use chrono::{DateTime, Utc};
use domain::user::User;
use serde::Serialize;

use crate::extract::CurrentUser;

/// The current user, with better-auth's field names.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
pub struct UserResponse {
    id: String,
    email: String,
    name: String,
    email_verified: bool,
    image: Option<String>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    updated_at: DateTime<Utc>,
    /// The session's active organization (better-auth's organization
    /// plugin); null when none is set or the plugin is not in use.
    active_organization_id: Option<String>,
}

impl UserResponse {
    fn new(user: User, active_organization_id: Option<String>) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            email_verified: user.email_verified,
            image: user.image,
            created_at: user.created_at,
            updated_at: user.updated_at,
            active_organization_id,
        }
    }
}

/// `GET /api/v1/users/me`: the signed-in user.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", operation_id = "getCurrentUser",
    responses(
        (status = 200, description = "The signed-in user", body = UserResponse),
        (status = 401, description = "Not signed in", body = crate::docs::ErrorResponse),
    ),
    security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
#[tracing::instrument(level = "debug", name = "users.me", skip_all, fields(user_id = %user.user().id))]
pub async fn me(user: CurrentUser) -> Json<UserResponse> {
    let CurrentUser(authenticated) = user;
    Json(UserResponse::new(
        authenticated.user,
        authenticated.active_organization_id,
    ))
}
