//! Bad input of every kind gets a clear error with a stable code, never a panic.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn malformed_wrong_typed_oversized_and_unknown_requests_get_the_right_code() {
    let server = TestServer::start_with(&[("ALLHANDS_SERVER__MAX_BODY_BYTES", "4096")]).await;
    let admin = server.admin().await;
    let url = server.url("/api/v1/departments");
    let raw = |body: &'static str, content_type: &'static str| {
        admin
            .client
            .post(&url)
            .header("X-CSRF-Token", &admin.csrf)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let message = expect_error(
        raw("{\"name\": ", "application/json").await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    assert!(message.contains("EOF"), "{message}");
    expect_error(
        raw("{\"name\":\"a\",", "application/json").await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        raw("{\"name\":\"a\"} trailing", "application/json")
            .await
            .unwrap(),
        400,
        "invalid_json",
    )
    .await;
    let message = expect_error(
        raw("{\"name\": 12}", "application/json").await.unwrap(),
        400,
        "invalid_field",
    )
    .await;
    assert!(message.starts_with("name:"), "{message}");
    let message = expect_error(
        raw(
            "{\"name\": \"a\", \"parent_id\": \"x\"}",
            "application/json",
        )
        .await
        .unwrap(),
        400,
        "invalid_field",
    )
    .await;
    assert!(message.starts_with("parent_id:"), "{message}");
    let message = expect_error(
        raw("{}", "application/json").await.unwrap(),
        400,
        "invalid_field",
    )
    .await;
    assert!(message.contains("name"), "{message}");
    let message = expect_error(
        raw("{\"name\": \"a\", \"colour\": 1}", "application/json")
            .await
            .unwrap(),
        400,
        "invalid_field",
    )
    .await;
    assert!(message.contains("colour"), "{message}");
    let message = expect_error(
        raw("{\"name\": \"   \"}", "application/json")
            .await
            .unwrap(),
        400,
        "invalid_field",
    )
    .await;
    assert!(message.starts_with("name:"), "{message}");
    expect_error(
        raw("name=a", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(10_000));
    let response = admin
        .client
        .post(&url)
        .header("X-CSRF-Token", &admin.csrf)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "payload_too_large").await;
    // Nested fields are named by their path.
    let grant = admin
        .post(
            "/api/v1/role-grants",
            json!({ "role_id": 2, "subject": { "kind": "employee", "employee_id": "one" } }),
        )
        .await;
    let message = expect_error(grant, 400, "invalid_field").await;
    assert!(message.starts_with("subject"), "{message}");
    let query = admin.get("/api/v1/audit?limit=lots").await;
    let message = expect_error(query, 400, "invalid_query").await;
    assert!(message.starts_with("limit:"), "{message}");
    expect_error(
        admin.get("/api/v1/audit?colour=red").await,
        400,
        "invalid_query",
    )
    .await;

    expect_error(admin.get("/api/v1/departments/999").await, 404, "not_found").await;
    expect_error(
        admin.get("/api/v1/departments/abc").await,
        400,
        "invalid_path",
    )
    .await;
    expect_error(admin.get("/api/v1/nothing-here").await, 404, "not_found").await;
    expect_error(
        admin
            .send(reqwest::Method::PUT, "/api/v1/departments", Some(json!({})))
            .await,
        405,
        "method_not_allowed",
    )
    .await;
    let conflict = admin
        .post("/api/v1/departments", json!({ "name": "Headquarters" }))
        .await;
    expect_error(conflict, 409, "conflict").await;
    // Anonymous callers learn nothing about the body before authentication.
    let anonymous = client()
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(anonymous, 401, "unauthenticated").await;
    // The server is still healthy after all of it.
    assert_eq!(
        client()
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn the_console_and_api_description_are_served_from_the_binary() {
    let server = TestServer::start().await;
    let index = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let etag = index
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(index.headers().get("cache-control").unwrap(), "no-cache");
    let again = client()
        .get(server.url("/"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // A console route reloaded in the browser still gets the console.
    assert_eq!(
        client()
            .get(server.url("/employees"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client()
            .get(server.url("/missing.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let openapi: serde_json::Value = client()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert_eq!(
        openapi["paths"]["/api/v1/departments"]["post"]["x-permission"],
        "org.manage"
    );
}
