//! Cursor pagination over HTTP: keyset pages linked by `Link: rel="next"`,
//! stable while items are added, with signed cursors, on every backend.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestUser, on_every_backend, send, spawn_app};

/// One page: its items' names and the `Link` target, if any.
async fn fetch(app: &TestApp, user: &TestUser, path_and_query: &str) -> (Vec<String>, Option<String>) {
    let response = app.as_user(Method::GET, path_and_query, user).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path_and_query}");
    let link = response.headers().get("link").map(|v| {
        let text = v.to_str().unwrap();
        assert!(text.ends_with(">; rel=\"next\""), "{text}");
        text.trim_start_matches('<').split('>').next().unwrap().to_owned()
    });
    let body: Value = response.json().await.unwrap();
    let names = body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    (names, link)
}

async fn create(app: &TestApp, user: &TestUser, name: &str) {
    let (status, body) = app.post("/api/v1/items", user, json!({ "name": name })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn pages_follow_link_without_repeats_or_gaps_while_items_are_added(backend: Backend) {
    let Some(app) = spawn_app(backend, "cursor_pages").await else {
        return;
    };
    let user = app.signed_in_user("pager").await;
    for i in 0..25 {
        create(&app, &user, &format!("old {i:02}")).await;
    }
    let (first, mut next) = fetch(&app, &user, "/api/v1/items?limit=10&view=compact").await;
    assert_eq!(first.len(), 10);
    assert_eq!(first[0], "old 24", "newest first");
    // Items created while paging must not shift the following pages.
    for i in 0..3 {
        create(&app, &user, &format!("new {i}")).await;
    }
    let mut seen = first.clone();
    let mut pages = 1;
    while let Some(link) = next {
        assert!(link.starts_with("/api/v1/items?"), "absolute path: {link}");
        assert!(
            link.contains("view=compact") && link.contains("limit=10"),
            "other parameters kept: {link}"
        );
        let (names, after) = fetch(&app, &user, &link).await;
        seen.extend(names);
        next = after;
        pages += 1;
        assert!(pages <= 3, "no Link past the last page");
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).rev().map(|i| format!("old {i:02}")).collect();
    assert_eq!(seen, expected, "every original item exactly once, in order");
    let (_, link) = fetch(&app, &user, "/api/v1/items?limit=28").await;
    assert!(link.is_none(), "a page holding everything has no successor");
    let (_, link) = fetch(&app, &user, "/api/v1/items?skip=0&limit=5").await;
    assert!(link.is_none(), "offset paging carries no Link");
}

async fn bad_cursors_are_422_and_never_another_callers(backend: Backend) {
    let Some(app) = spawn_app(backend, "cursor_refusals").await else {
        return;
    };
    let (alice, bob) = (app.signed_in_user("alice").await, app.signed_in_user("bob").await);
    for i in 0..3 {
        create(&app, &alice, &format!("a{i}")).await;
    }
    let (_, link) = fetch(&app, &alice, "/api/v1/items?limit=1").await;
    let link = link.unwrap();
    let cursor = link.split("cursor=").nth(1).unwrap().to_owned();
    let tampered = {
        let mut chars: Vec<char> = cursor.chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    for (query, who) in [
        (format!("cursor={tampered}"), &alice),
        (format!("cursor={}", &cursor[..cursor.len() - 3]), &alice),
        ("cursor=%00%01".to_owned(), &alice),
        (format!("cursor={cursor}"), &bob),
        (format!("skip=1&cursor={cursor}"), &alice),
    ] {
        let (status, body) = send(app.as_user(Method::GET, &format!("/api/v1/items?{query}"), who)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["error"]["details"]["errors"][0]["field"], "cursor");
    }
    let (names, _) = fetch(&app, &alice, &link).await;
    assert_eq!(names, vec!["a1"], "the genuine cursor works");
}

on_every_backend!(
    pages_follow_link_without_repeats_or_gaps_while_items_are_added,
    bad_cursors_are_422_and_never_another_callers
);
