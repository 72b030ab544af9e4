//! `GET /api/v1/organizations`: the caller's memberships (better-auth's
//! organization plugin); an empty list without the plugin.

use actix_web::web::{self, Json};
use chrono::{DateTime, Utc};
use domain::organization::Membership;
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::CurrentUser;
use crate::state::AppState;

/// One of the caller's organizations, with their role there.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Organization)]
pub struct OrganizationResponse {
    id: String,
    name: String,
    slug: Option<String>,
    logo: Option<String>,
    /// The caller's role list, as better-auth stores it (`"admin,member"`).
    role: String,
    #[serde(serialize_with = "crate::json_time::rfc3339")]
    created_at: DateTime<Utc>,
}

impl From<Membership> for OrganizationResponse {
    fn from(membership: Membership) -> Self {
        let Membership { organization, role } = membership;
        Self {
            id: organization.id,
            name: organization.name,
            slug: organization.slug,
            logo: organization.logo,
            role: role.as_str().to_owned(),
            created_at: organization.created_at,
        }
    }
}

/// `GET /api/v1/organizations`: the caller's organizations, by name.
///
/// # Errors
/// 401, 503.
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations", operation_id = "listOrganizations",
    responses(
        (status = 200, description = "The caller's organizations, ordered by name (empty without the organization plugin)", body = [OrganizationResponse]),
        (status = 401, description = "Not signed in", body = crate::docs::ErrorResponse),
        (status = 503, description = "Database unavailable", body = crate::docs::ErrorResponse),
    ),
    security(("cookieAuth" = []), ("bearerAuth" = []), ("jwtAuth" = []), ("apiKeyAuth" = [])))]
#[tracing::instrument(level = "debug", name = "organizations.list", skip_all, fields(user_id = %user.user().id))]
pub async fn list(state: web::Data<AppState>, user: CurrentUser) -> Result<Json<Vec<OrganizationResponse>>, ApiError> {
    let memberships = state.organizations.memberships(user.user()).await?;
    Ok(Json(memberships.into_iter().map(OrganizationResponse::from).collect()))
}
