//! The resources through the app: users/me, items, organizations, bodies.

use super::*;

#[actix_web::test]
async fn me_answers_the_user_with_better_auth_field_names() {
    let (status, _, body) = call(
        state(signed_in_store(), MockItemRepository::new()),
        TestRequest::get().uri("/api/v1/users/me").insert_header(cookie()),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "user-1");
    assert_eq!(body["emailVerified"], true);
    assert_eq!(body["createdAt"], "2026-01-02T03:04:05Z");
    assert_eq!(body["image"], "https://example.com/a.png");
}

#[actix_web::test]
async fn no_credential_is_401_in_the_envelope_and_touches_nothing() {
    let mut store = MockSessionStore::new();
    store.expect_find_by_token().never();
    let mut repo = MockItemRepository::new();
    repo.expect_list().never();
    let (status, headers, body) = call(state(store, repo), TestRequest::get().uri("/api/v1/items"), 1024).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["path"], "/api/v1/items");
    assert_eq!(
        body["error"]["request_id"],
        headers.get("x-request-id").unwrap().to_str().unwrap()
    );
}

#[actix_web::test]
async fn list_passes_the_owner_and_page_to_storage() {
    let mut repo = MockItemRepository::new();
    repo.expect_list()
        // One more row than the page, to learn whether a next page exists.
        .withf(|owner, page| {
            *owner == domain::scope::Owner::User("user-1".into()) && page.skip() == 10 && page.limit() == 6
        })
        .times(1)
        .returning(|_, _| Ok(vec![]));
    let (status, _, body) = call(
        state(signed_in_store(), repo),
        TestRequest::get()
            .uri("/api/v1/items/?skip=10&limit=5")
            .insert_header(cookie()),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
}

#[actix_web::test]
async fn an_organization_header_without_the_plugin_is_403_and_a_malformed_one_400() {
    for (value, status, message) in [
        ("acme", StatusCode::FORBIDDEN, "not a member of this organization"),
        ("", StatusCode::BAD_REQUEST, "X-Organization-Id is empty"),
    ] {
        let mut repo = MockItemRepository::new();
        repo.expect_list().never();
        let (got, _, body) = call(
            state(signed_in_store(), repo),
            TestRequest::get()
                .uri("/api/v1/items")
                .insert_header(cookie())
                .insert_header(("X-Organization-Id", value)),
            1024,
        )
        .await;
        assert_eq!(got, status, "{value:?}: {body}");
        assert_eq!(body["error"]["message"], message);
    }
}

#[actix_web::test]
async fn a_member_lists_the_organizations_items_and_a_stranger_is_refused() {
    use domain::organization::{MockMembershipCache, MockMembershipStore, OrganizationService};
    let mut store = MockMembershipStore::new();
    store.expect_roles().returning(|_, organization| {
        Ok((organization.as_str() == "acme").then(|| domain::scope::Roles::new("member")))
    });
    let mut cache = MockMembershipCache::new();
    cache.expect_get().returning(|_| Ok(None));
    cache.expect_put().returning(|_, _, _| Ok(()));
    let organizations = OrganizationService::new(Arc::new(store), Arc::new(cache), Duration::from_secs(60));
    let mut repo = MockItemRepository::new();
    repo.expect_list()
        .withf(|owner, _| *owner == domain::scope::Owner::Organization("acme".into()))
        .times(1)
        .returning(|_, _| Ok(vec![]));
    let state = state_with(signed_in_store(), repo, |s| s.organizations = organizations);
    let (status, _, body) = call(
        state.clone(),
        TestRequest::get()
            .uri("/api/v1/items")
            .insert_header(cookie())
            .insert_header(("X-Organization-Id", "acme")),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = call(
        state,
        TestRequest::get()
            .uri("/api/v1/items")
            .insert_header(cookie())
            .insert_header(("X-Organization-Id", "globex")),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["message"], "not a member of this organization");
}

#[actix_web::test]
async fn create_answers_201_with_the_trimmed_item_owned_by_the_caller() {
    let mut repo = MockItemRepository::new();
    repo.expect_insert().times(1).returning(|_| Ok(()));
    let (status, _, body) = call(
        state(signed_in_store(), repo),
        TestRequest::post()
            .uri("/api/v1/items")
            .insert_header(cookie())
            .set_json(json!({"name": "  Lamp  "})),
        1024,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["name"], "Lamp");
    assert_eq!(body["owner_id"], "user-1");
    assert_eq!(body["is_active"], true);
    assert_eq!(body["description"], Value::Null);
}

#[actix_web::test]
async fn body_problems_are_4xx_envelopes_never_500() {
    let cases = [
        (
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload("{nope"),
            400,
        ),
        (
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "text/plain"))
                .set_payload("{}"),
            415,
        ),
        (TestRequest::post().set_payload("{}"), 415),
        (
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload("[1]"),
            422,
        ),
        (
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(format!("{{\"name\":\"{}\"}}", "x".repeat(300))),
            413,
        ),
    ];
    for (req, expected) in cases {
        let mut repo = MockItemRepository::new();
        repo.expect_insert().never();
        let (status, _, body) = call(
            state(signed_in_store(), repo),
            req.uri("/api/v1/items").insert_header(cookie()),
            256,
        )
        .await;
        assert_eq!(status.as_u16(), expected, "{body}");
        assert_eq!(body["error"]["code"], expected);
    }
}
