use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn first_run_admin_must_change_password_before_anything_else() {
    let server = TestServer::start().await;
    let session = Session::login(&server, "admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    assert_eq!(session.info["must_change_password"], json!(true));
    expect_error(
        session.get("/api/v1/departments").await,
        403,
        "password_change_required",
    )
    .await;
    let weak = session
        .post(
            "/api/v1/auth/password",
            json!({ "current_password": ADMIN_PASSWORD, "new_password": "short" }),
        )
        .await;
    expect_error(weak, 400, "weak_password").await;
    let wrong = session
        .post(
            "/api/v1/auth/password",
            json!({ "current_password": "nope-nope-nope", "new_password": NEW_ADMIN_PASSWORD }),
        )
        .await;
    expect_error(wrong, 400, "invalid_field").await;
    let changed = session
        .post(
            "/api/v1/auth/password",
            json!({ "current_password": ADMIN_PASSWORD, "new_password": NEW_ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(changed.status(), 204);
    let departments = session.json("/api/v1/departments").await;
    assert_eq!(departments["items"][0]["name"], "Headquarters");
    // The old password no longer works; the new one does.
    assert_eq!(
        Session::login(&server, "admin", ADMIN_PASSWORD)
            .await
            .err()
            .unwrap()
            .0,
        401
    );
    let again = Session::login(&server, "admin", NEW_ADMIN_PASSWORD)
        .await
        .unwrap();
    assert_eq!(again.info["must_change_password"], json!(false));
}
