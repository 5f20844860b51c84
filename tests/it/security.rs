//! Sessions, CSRF, throttling and logging out everywhere.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn state_changes_without_the_csrf_token_or_from_another_origin_are_refused() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let url = server.url("/api/v1/departments");
    let body = json!({ "name": "Sales", "parent_id": 1 });
    let missing = admin.client.post(&url).json(&body).send().await.unwrap();
    expect_error(missing, 403, "csrf_rejected").await;
    let wrong = admin
        .client
        .post(&url)
        .header("X-CSRF-Token", "forged")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(wrong, 403, "csrf_rejected").await;
    let foreign = admin
        .client
        .post(&url)
        .header("X-CSRF-Token", &admin.csrf)
        .header("Origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(foreign, 403, "csrf_rejected").await;
    let origin = server.base.clone();
    let good = admin
        .client
        .post(&url)
        .header("X-CSRF-Token", &admin.csrf)
        .header("Origin", origin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 201);
    // Reads need no token.
    assert_eq!(admin.client.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_session_cookie_is_httponly_secure_and_samesite() {
    let server = TestServer::start().await;
    let response = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_some()
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_account_and_per_address() {
    let server = TestServer::start_with(&[
        ("ALLHANDS_AUTH__MAX_FAILURES_PER_ACCOUNT", "3"),
        ("ALLHANDS_AUTH__MAX_FAILURES_PER_ADDRESS", "6"),
    ])
    .await;
    for _ in 0..3 {
        let (status, body) = Session::login(&server, "admin", "wrong-password-1")
            .await
            .err()
            .unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str().unwrap()),
            (401, "invalid_credentials")
        );
    }
    // Even the right password is refused while the account is throttled.
    let response = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60);
    expect_error(response, 429, "throttled").await;
    // Other accounts from the same address: the address limit applies after 6 failures.
    for i in 0..3 {
        let (status, _) = Session::login(&server, &format!("nobody{i}"), "wrong-password-1")
            .await
            .err()
            .unwrap();
        assert_eq!(status, 401);
    }
    let (status, body) = Session::login(&server, "someone-else", "wrong-password-1")
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap()),
        (429, "throttled")
    );
    // Failed logins are audited.
    let mut restarted = server;
    restarted.stop();
    let output = restarted.cli(&["audit", "verify"]);
    assert!(output.status.success(), "{}", text(&output));
}

#[tokio::test]
async fn logging_out_everywhere_ends_every_session_and_disabling_locks_out() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let created = admin
        .create("/api/v1/employees", json!({ "username": "li.wei", "display_name": "李伟", "department_id": 1, "password": "initial-Pass-word-9", "language": "zh-CN", "time_zone": "Asia/Shanghai" }))
        .await;
    assert!(created["one_time_password"].is_null());
    let id = created["employee"]["id"].as_u64().unwrap();
    let first = Session::login(&server, "li.wei", "initial-Pass-word-9")
        .await
        .unwrap();
    let second = Session::login(&server, "li.wei", "initial-Pass-word-9")
        .await
        .unwrap();
    assert_eq!(first.get("/api/v1/auth/session").await.status(), 200);
    let ended = first
        .post("/api/v1/auth/logout-everywhere", json!({}))
        .await;
    assert_eq!(ended.status(), 200);
    expect_error(
        second.get("/api/v1/auth/session").await,
        401,
        "session_expired",
    )
    .await;
    // The answer also removed this browser's cookie.
    expect_error(
        first.get("/api/v1/auth/session").await,
        401,
        "unauthenticated",
    )
    .await;

    let third = Session::login(&server, "li.wei", "initial-Pass-word-9")
        .await
        .unwrap();
    let disabled = admin
        .patch(
            &format!("/api/v1/employees/{id}"),
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(third.get("/api/v1/auth/session").await.status(), 401);
    let (status, body) = Session::login(&server, "li.wei", "initial-Pass-word-9")
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap()),
        (403, "account_disabled")
    );
    // An administrator cannot lock themselves out.
    let own = admin
        .patch("/api/v1/employees/1", json!({ "disabled": true }))
        .await;
    expect_error(own, 400, "invalid_field").await;
}

#[tokio::test]
async fn a_reset_password_is_one_time_and_must_be_changed() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let created = admin
        .create(
            "/api/v1/employees",
            json!({ "username": "sales.zhang", "display_name": "Zhang", "department_id": 1 }),
        )
        .await;
    let otp = created["one_time_password"].as_str().unwrap().to_string();
    let id = created["employee"]["id"].as_u64().unwrap();
    let session = Session::login(&server, "sales.zhang", &otp).await.unwrap();
    assert_eq!(session.info["must_change_password"], json!(true));
    let reset = admin
        .create(&format!("/api/v1/employees/{id}/reset-password"), json!({}))
        .await;
    let new_otp = reset["one_time_password"].as_str().unwrap();
    assert_ne!(new_otp, otp);
    assert_eq!(session.get("/api/v1/auth/session").await.status(), 401);
    assert!(Session::login(&server, "sales.zhang", &otp).await.is_err());
    assert!(
        Session::login(&server, "sales.zhang", new_otp)
            .await
            .is_ok()
    );
}
