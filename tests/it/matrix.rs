//! Every endpoint × every role: who gets in and who is refused, asserted in full.

use std::collections::HashMap;

use allhands::http::routes::ROUTES;
use serde_json::{Value, json};

use crate::common::*;

const ROLES: [&str; 6] = [
    "administrator",
    "supervisor",
    "specialist_agent",
    "employee_agent",
    "auditor",
    "read_only",
];

/// Columns: anonymous, then the roles above. `P` public, `-` 401 without credentials,
/// `A` allowed, `D` refused with 403, `S` signed by a channel secret or a widget visitor's token
/// (refused without one, whoever asks). Changing a role's permissions must change this table.
const EXPECTED: &[(&str, &str)] = &[
    ("GET /healthz", "PPPPPPP"),
    ("GET /readyz", "PPPPPPP"),
    ("GET /metrics", "-ADDDDD"),
    ("GET /api/v1/openapi.json", "PPPPPPP"),
    ("GET /api/v1/system/status", "-ADDDDD"),
    ("POST /api/v1/system/backup", "-ADDDDD"),
    ("GET /api/v1/permissions", "-AADDAA"),
    ("POST /api/v1/auth/login", "PPPPPPP"),
    ("POST /api/v1/auth/logout", "-AAAAAA"),
    ("POST /api/v1/auth/logout-everywhere", "-AAAAAA"),
    ("GET /api/v1/auth/session", "-AAAAAA"),
    ("POST /api/v1/auth/password", "-AAAAAA"),
    ("PATCH /api/v1/me", "-AAAAAA"),
    ("GET /api/v1/departments", "-AAAAAA"),
    ("POST /api/v1/departments", "-ADDDDD"),
    ("GET /api/v1/departments/{id}", "-AAAAAA"),
    ("PATCH /api/v1/departments/{id}", "-ADDDDD"),
    ("DELETE /api/v1/departments/{id}", "-ADDDDD"),
    ("GET /api/v1/positions", "-AAAAAA"),
    ("POST /api/v1/positions", "-ADDDDD"),
    ("GET /api/v1/positions/{id}", "-AAAAAA"),
    ("PATCH /api/v1/positions/{id}", "-ADDDDD"),
    ("DELETE /api/v1/positions/{id}", "-ADDDDD"),
    ("GET /api/v1/employees", "-AAAAAA"),
    ("POST /api/v1/employees", "-AADDDD"),
    ("GET /api/v1/employees/{id}", "-AAAAAA"),
    ("PATCH /api/v1/employees/{id}", "-AADDDD"),
    ("POST /api/v1/employees/{id}/reset-password", "-AADDDD"),
    ("POST /api/v1/employees/{id}/end-sessions", "-AADDDD"),
    ("GET /api/v1/employees/{id}/access", "-AADDAA"),
    ("GET /api/v1/roles", "-AADDAA"),
    ("POST /api/v1/roles", "-ADDDDD"),
    ("GET /api/v1/roles/{id}", "-AADDAA"),
    ("PATCH /api/v1/roles/{id}", "-ADDDDD"),
    ("DELETE /api/v1/roles/{id}", "-ADDDDD"),
    ("GET /api/v1/role-grants", "-AADDAA"),
    ("POST /api/v1/role-grants", "-ADDDDD"),
    ("DELETE /api/v1/role-grants/{id}", "-ADDDDD"),
    ("GET /api/v1/api-tokens", "-ADDDDD"),
    ("POST /api/v1/api-tokens", "-ADDDDD"),
    ("DELETE /api/v1/api-tokens/{id}", "-ADDDDD"),
    ("GET /api/v1/audit", "-ADDDAD"),
    ("GET /api/v1/audit/export", "-ADDDAD"),
    ("GET /api/v1/audit/verify", "-ADDDAD"),
    ("GET /api/v1/ws", "-AAAAAA"),
    ("GET /api/v1/notifications", "-AAAAAA"),
    ("POST /api/v1/notifications/{id}/read", "-AAAAAA"),
    ("POST /api/v1/notifications/read-all", "-AAAAAA"),
    ("GET /api/v1/channels", "-ADDDDD"),
    ("POST /api/v1/channels", "-ADDDDD"),
    ("GET /api/v1/channels/{id}", "-ADDDDD"),
    ("PATCH /api/v1/channels/{id}", "-ADDDDD"),
    ("GET /api/v1/channels/{id}/status", "-ADDDDD"),
    ("POST /api/v1/channels/{id}/rotate-secret", "-ADDDDD"),
    ("POST /api/v1/channels/{id}/inbound", "SSSSSSS"),
    ("POST /api/v1/widget/{id}/sessions", "PPPPPPP"),
    ("OPTIONS /api/v1/widget/{id}/sessions", "PPPPPPP"),
    ("POST /api/v1/widget/{id}/uploads", "SSSSSSS"),
    ("OPTIONS /api/v1/widget/{id}/uploads", "PPPPPPP"),
    (
        "GET /api/v1/widget/{id}/attachments/{attachment}",
        "PPPPPPP",
    ),
    ("GET /api/v1/widget/{id}/ws", "PPPPPPP"),
    ("GET /api/v1/widget/{id}/search", "PPPPPPP"),
    ("GET /api/v1/widget/{id}/articles/{article}", "PPPPPPP"),
    ("GET /api/v1/dead-letters", "-ADDDDD"),
    ("POST /api/v1/dead-letters/{id}/retry", "-ADDDDD"),
    ("GET /api/v1/conversations", "-AAAADA"),
    ("GET /api/v1/reply-channels", "-AAAADD"),
    ("POST /api/v1/conversations", "-AAAADD"),
    ("GET /api/v1/conversations/{id}", "-AAAADA"),
    ("POST /api/v1/conversations/{id}/messages", "-AAAADD"),
    ("POST /api/v1/attachments", "-AAAADD"),
    ("GET /api/v1/attachments/{id}", "-AAAADA"),
    ("POST /api/v1/conversations/{id}/status", "-AAAADD"),
    ("PUT /api/v1/conversations/{id}/tags", "-AAAADD"),
    ("POST /api/v1/conversations/{id}/assign", "-AAADDD"),
    ("GET /api/v1/customers", "-AAAADA"),
    ("GET /api/v1/customers/{id}", "-AAAADA"),
    ("PATCH /api/v1/customers/{id}", "-AAADDD"),
    ("POST /api/v1/customers/{id}/merge", "-AAADDD"),
    ("POST /api/v1/customer-merges/{id}/undo", "-AAADDD"),
    ("GET /api/v1/routing/me", "-AAAAAA"),
    ("PUT /api/v1/routing/me/presence", "-AAAAAA"),
    ("POST /api/v1/routing/offers/{id}/accept", "-AAAADD"),
    ("POST /api/v1/routing/offers/{id}/decline", "-AAAAAA"),
    ("GET /api/v1/routing/live", "-AADDDD"),
    ("GET /api/v1/routing/agents", "-AADDDD"),
    ("PATCH /api/v1/routing/agents/{id}", "-AADDDD"),
    ("GET /api/v1/routing/policies", "-AADDDD"),
    ("POST /api/v1/routing/policies", "-AADDDD"),
    ("GET /api/v1/routing/experiments", "-AADDDD"),
    ("POST /api/v1/routing/experiments", "-AADDDD"),
    ("POST /api/v1/routing/experiments/{id}/start", "-AADDDD"),
    ("POST /api/v1/routing/experiments/{id}/stop", "-AADDDD"),
    ("GET /api/v1/routing/experiments/{id}/report", "-AADDDD"),
    ("POST /api/v1/routing/replay", "-AADDDD"),
    ("GET /api/v1/routing/lanes", "-AAAADA"),
    ("POST /api/v1/routing/lanes", "-AADDDD"),
    ("PUT /api/v1/routing/lanes/{id}", "-AADDDD"),
    ("DELETE /api/v1/routing/lanes/{id}", "-AADDDD"),
    ("POST /api/v1/conversations/{id}/escalate", "-AAAADD"),
    ("POST /api/v1/conversations/{id}/transfer", "-AAAADD"),
    ("DELETE /api/v1/conversations/{id}/transfer", "-AAAADD"),
    ("POST /api/v1/conversations/{id}/return", "-AAAADD"),
    ("GET /api/v1/routing/calendars", "-AADDDD"),
    ("POST /api/v1/routing/calendars", "-AADDDD"),
    ("PUT /api/v1/routing/calendars/{id}", "-AADDDD"),
    ("DELETE /api/v1/routing/calendars/{id}", "-AADDDD"),
    ("GET /api/v1/conversations/{id}/routing", "-AAAADA"),
    ("PUT /api/v1/conversations/{id}/classification", "-AAAADD"),
    ("GET /api/v1/knowledge/articles", "-AAAADA"),
    ("POST /api/v1/knowledge/articles", "-AAAADD"),
    ("GET /api/v1/knowledge/articles/{id}", "-AAAADA"),
    ("PATCH /api/v1/knowledge/articles/{id}", "-AADDDD"),
    ("PUT /api/v1/knowledge/articles/{id}/draft", "-AAAADD"),
    ("DELETE /api/v1/knowledge/articles/{id}/draft", "-AAAADD"),
    ("POST /api/v1/knowledge/articles/{id}/submit", "-AAAADD"),
    (
        "POST /api/v1/knowledge/articles/{id}/request-changes",
        "-AADDDD",
    ),
    ("POST /api/v1/knowledge/articles/{id}/publish", "-AADDDD"),
    ("POST /api/v1/knowledge/articles/{id}/archive", "-AADDDD"),
    ("POST /api/v1/knowledge/articles/{id}/unarchive", "-AADDDD"),
    ("GET /api/v1/knowledge/articles/{id}/versions", "-AAAADA"),
    (
        "GET /api/v1/knowledge/articles/{id}/versions/{version}",
        "-AAAADA",
    ),
    ("POST /api/v1/knowledge/articles/{id}/restore", "-AAAADD"),
    ("POST /api/v1/knowledge/articles/{id}/questions", "-AAAADD"),
    ("GET /api/v1/knowledge/articles/{id}/graph", "-AAAADA"),
    ("GET /api/v1/knowledge/entities", "-AAAADA"),
    ("POST /api/v1/knowledge/entities", "-AADDDD"),
    ("GET /api/v1/knowledge/entities/{id}", "-AAAADA"),
    ("PUT /api/v1/knowledge/entities/{id}", "-AADDDD"),
    ("DELETE /api/v1/knowledge/entities/{id}", "-AADDDD"),
    ("GET /api/v1/knowledge/entities/{id}/graph", "-AAAADA"),
    ("POST /api/v1/knowledge/relations", "-AAAADD"),
    ("DELETE /api/v1/knowledge/relations/{id}", "-AAAADD"),
    ("GET /api/v1/knowledge/synonyms", "-AAAADA"),
    ("PUT /api/v1/knowledge/synonyms", "-AADDDD"),
    ("GET /api/v1/knowledge/search", "-AAAADA"),
    ("POST /api/v1/knowledge/import", "-AADDDD"),
    ("GET /api/v1/knowledge/export", "-AAAADA"),
    ("GET /api/v1/knowledge/tasks", "-AAAADD"),
    ("PATCH /api/v1/knowledge/tasks/{id}", "-AADDDD"),
    ("GET /api/v1/help/search", "PPPPPPP"),
    ("GET /api/v1/help/articles/{id}", "PPPPPPP"),
    ("GET /api/v1/assist/dictionaries", "-AADDDD"),
    ("POST /api/v1/assist/dictionaries", "-AADDDD"),
    ("GET /api/v1/assist/dictionaries/{id}", "-AADDDD"),
    ("PUT /api/v1/assist/dictionaries/{id}", "-AADDDD"),
    ("DELETE /api/v1/assist/dictionaries/{id}", "-AADDDD"),
    ("POST /api/v1/assist/check", "-AAAADD"),
    ("GET /api/v1/conversations/{id}/suggestions", "-AAAADD"),
    (
        "POST /api/v1/conversations/{id}/suggestions/feedback",
        "-AAAADD",
    ),
    ("POST /api/v1/conversations/{id}/draft", "-AAAADD"),
    ("GET /api/v1/assist/llm", "-AAAADD"),
];

/// Creates an employee holding one built-in role and signs them in with a changed password.
pub async fn employee_with_role(
    server: &TestServer,
    admin: &Session,
    username: &str,
    role_key: &str,
) -> Session {
    let roles = admin.json("/api/v1/roles").await;
    let role_id = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == role_key)
        .unwrap()["id"]
        .clone();
    let created = admin
        .create(
            "/api/v1/employees",
            json!({ "username": username, "display_name": username, "department_id": 1, "password": EMPLOYEE_PASSWORD }),
        )
        .await;
    let id = created["employee"]["id"].clone();
    admin
        .create(
            "/api/v1/role-grants",
            json!({ "role_id": role_id, "subject": { "kind": "employee", "employee_id": id } }),
        )
        .await;
    first_sign_in(server, username).await
}

#[tokio::test]
async fn every_endpoint_checks_its_permission_for_every_role() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let mut sessions: Vec<Session> = Vec::new();
    for (i, role) in ROLES.iter().enumerate() {
        let name = format!("matrix{i}");
        sessions.push(employee_with_role(&server, &admin, &name, role).await);
    }
    let expected: HashMap<&str, &str> = EXPECTED.iter().copied().collect();
    assert_eq!(expected.len(), EXPECTED.len(), "duplicate rows in EXPECTED");
    let routes: Vec<String> = ROUTES
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    for key in expected.keys() {
        assert!(
            routes.iter().any(|r| r == key),
            "EXPECTED names {key}, which is not a route"
        );
    }

    let anonymous = client();
    let mut failures = Vec::new();
    for route in ROUTES {
        let key = format!("{} {}", route.method, route.path);
        let row = expected
            .get(key.as_str())
            .unwrap_or_else(|| panic!("the route {key} is missing from EXPECTED"));
        let path = route.path.replace("{id}", "999999");
        let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
        let body = matches!(route.method, "POST" | "PATCH" | "PUT").then(|| json!({}));
        for (column, want) in row.chars().enumerate() {
            let status = if column == 0 {
                let mut request = anonymous.request(method.clone(), server.url(&path));
                if let Some(body) = &body {
                    request = request.json(body);
                }
                request.send().await.unwrap().status().as_u16()
            } else if route.path.contains("logout") {
                // Logging out ends the session; use a throwaway one.
                let name = format!("matrix{}", column - 1);
                let throwaway = Session::login(&server, &name, CHANGED_PASSWORD)
                    .await
                    .unwrap();
                throwaway
                    .send(method.clone(), &path, body.clone())
                    .await
                    .status()
                    .as_u16()
            } else {
                sessions[column - 1]
                    .send(method.clone(), &path, body.clone())
                    .await
                    .status()
                    .as_u16()
            };
            if route.path.ends_with("logout-everywhere") && column > 0 {
                // That also ended the role's main session.
                let name = format!("matrix{}", column - 1);
                sessions[column - 1] = Session::login(&server, &name, CHANGED_PASSWORD)
                    .await
                    .unwrap();
            }
            let ok = match want {
                'P' => status != 401 && status != 403,
                '-' => status == 401,
                'A' => status != 401 && status != 403,
                'D' => status == 403,
                'S' => status == 401 || status == 404,
                other => panic!("unknown mark {other}"),
            };
            if !ok {
                let who = if column == 0 {
                    "anonymous"
                } else {
                    ROLES[column - 1]
                };
                failures.push(format!("{key} as {who}: expected {want}, got {status}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn api_tokens_carry_only_their_scopes_and_stop_when_revoked() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let issued = admin
        .create(
            "/api/v1/api-tokens",
            json!({ "name": "hr sync", "scopes": ["employees.read"], "expires_in_days": 30 }),
        )
        .await;
    let secret = issued["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("ah_"));
    let bearer = |path: &str| client().get(server.url(path)).bearer_auth(&secret).send();
    assert_eq!(bearer("/api/v1/employees").await.unwrap().status(), 200);
    expect_error(
        bearer("/api/v1/departments").await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    // A token needs no CSRF token: it is not a browser credential.
    let created = client()
        .post(server.url("/api/v1/departments"))
        .bearer_auth(&secret)
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    expect_error(created, 403, "forbidden").await;
    let listed: Value = admin.json("/api/v1/api-tokens").await;
    assert!(
        !listed.to_string().contains(&secret),
        "secrets must never be listed"
    );
    let id = issued["token"]["id"].as_u64().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/api-tokens/{id}"))
            .await
            .status(),
        200
    );
    expect_error(
        bearer("/api/v1/employees").await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
    expect_error(
        client()
            .get(server.url("/api/v1/employees"))
            .bearer_auth("ah_forged")
            .send()
            .await
            .unwrap(),
        401,
        "unauthenticated",
    )
    .await;
    // A token cannot carry a permission its issuer lacks, nor live past the maximum.
    let too_long = admin
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "x", "scopes": ["employees.read"], "expires_in_days": 5000 }),
        )
        .await;
    expect_error(too_long, 400, "invalid_field").await;
}

#[tokio::test]
async fn a_grant_scoped_to_a_department_reaches_only_its_subtree() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let sales = admin
        .create(
            "/api/v1/departments",
            json!({ "name": "Sales", "parent_id": 1 }),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let east = admin
        .create(
            "/api/v1/departments",
            json!({ "name": "Sales East", "parent_id": sales }),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let support = admin
        .create(
            "/api/v1/departments",
            json!({ "name": "Support", "parent_id": 1 }),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let lead = admin
        .create("/api/v1/employees", json!({ "username": "sales.lead", "display_name": "Sales lead", "department_id": sales, "password": EMPLOYEE_PASSWORD }))
        .await["employee"]["id"]
        .clone();
    admin
        .create("/api/v1/role-grants", json!({ "role_id": 2, "subject": { "kind": "employee", "employee_id": lead }, "scope_department_id": sales }))
        .await;
    // A whole department can hold a role too: everyone in Support answers part-time.
    admin
        .create("/api/v1/role-grants", json!({ "role_id": 4, "subject": { "kind": "department", "department_id": support, "include_subdepartments": true } }))
        .await;
    let session = first_sign_in(&server, "sales.lead").await;
    assert_eq!(
        session.info["scoped_permissions"]["employees.manage"],
        json!([sales])
    );
    assert!(
        session.info["scoped_permissions"]
            .get("account.self")
            .is_none()
    );
    let inside = session
        .post(
            "/api/v1/employees",
            json!({ "username": "east.rep", "display_name": "East rep", "department_id": east }),
        )
        .await;
    assert_eq!(inside.status(), 201);
    let outside = session.post("/api/v1/employees", json!({ "username": "support.rep", "display_name": "Support rep", "department_id": support })).await;
    let message = expect_error(outside, 403, "forbidden").await;
    assert!(message.contains("does not reach"), "{message}");
    let listed = session.json("/api/v1/employees").await;
    let departments: Vec<u64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["department_id"].as_u64().unwrap())
        .collect();
    assert!(
        departments.iter().all(|d| *d == sales || *d == east),
        "{departments:?}"
    );
    // The department grant reaches a new Support employee without a grant of their own.
    let created = admin.create("/api/v1/employees", json!({ "username": "helper", "display_name": "Helper", "department_id": support, "password": EMPLOYEE_PASSWORD })).await;
    let access = admin
        .json(&format!(
            "/api/v1/employees/{}/access",
            created["employee"]["id"]
        ))
        .await;
    let permissions: Vec<&str> = access["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["permission"].as_str().unwrap())
        .collect();
    assert!(permissions.contains(&"conversations.reply"), "{access}");
    let elsewhere = session
        .get(&format!(
            "/api/v1/employees/{}/access",
            created["employee"]["id"]
        ))
        .await;
    expect_error(elsewhere, 403, "forbidden").await;
}

#[tokio::test]
async fn metrics_report_requests_latency_commits_and_connections_to_a_scoped_token() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let issued = admin
        .create(
            "/api/v1/api-tokens",
            json!({ "name": "prometheus", "scopes": ["metrics.read"], "expires_in_days": 365 }),
        )
        .await;
    let secret = issued["secret"].as_str().unwrap();
    let response = client()
        .get(server.url("/metrics"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for metric in [
        "allhands_http_requests_total",
        "allhands_http_request_duration_seconds_bucket",
        "allhands_store_commit_seconds_bucket",
        "allhands_http_open_connections",
        "allhands_store_commits_total",
    ] {
        assert!(text.contains(metric), "{metric} missing from:\n{text}");
    }
    assert!(text.contains("route=\"/api/v1/api-tokens\""), "{text}");
    expect_error(
        client().get(server.url("/metrics")).send().await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn nobody_takes_over_an_account_more_powerful_than_their_own() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let supervisor = employee_with_role(&server, &admin, "team.lead", "supervisor").await;
    for attempt in [
        supervisor
            .post("/api/v1/employees/1/reset-password", json!({}))
            .await,
        supervisor
            .post("/api/v1/employees/1/end-sessions", json!({}))
            .await,
        supervisor
            .patch("/api/v1/employees/1", json!({ "disabled": true }))
            .await,
    ] {
        let message = expect_error(attempt, 403, "forbidden").await;
        assert!(message.contains("holds"), "{message}");
    }
    // Nor by moving into a place that carries more: a department whose members are administrators.
    let admins = admin
        .create(
            "/api/v1/departments",
            json!({ "name": "IT admins", "parent_id": 1 }),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    admin
        .create(
            "/api/v1/role-grants",
            json!({ "role_id": 1, "subject": { "kind": "department", "department_id": admins } }),
        )
        .await;
    let me = supervisor.info["employee"]["id"].as_u64().unwrap();
    expect_error(
        supervisor
            .patch(
                &format!("/api/v1/employees/{me}"),
                json!({ "department_id": admins }),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
    let planted = supervisor
        .post("/api/v1/employees", json!({ "username": "sleeper", "display_name": "x", "department_id": admins, "password": EMPLOYEE_PASSWORD }))
        .await;
    expect_error(planted, 403, "forbidden").await;
    // Managing an ordinary agent is fine.
    let agent = employee_with_role(&server, &admin, "plain.agent", "employee_agent").await;
    let agent_id = agent.info["employee"]["id"].as_u64().unwrap();
    assert_eq!(
        supervisor
            .post(
                &format!("/api/v1/employees/{agent_id}/reset-password"),
                json!({})
            )
            .await
            .status(),
        200
    );

    // An administrator grant limited to one department does not reach organisation-wide roles.
    let sales = admin
        .create(
            "/api/v1/departments",
            json!({ "name": "Sales", "parent_id": 1 }),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let local = admin.create("/api/v1/employees", json!({ "username": "sales.admin", "display_name": "x", "department_id": sales, "password": EMPLOYEE_PASSWORD })).await;
    admin
        .create("/api/v1/role-grants", json!({ "role_id": 1, "subject": { "kind": "employee", "employee_id": local["employee"]["id"] }, "scope_department_id": sales }))
        .await;
    let session = first_sign_in(&server, "sales.admin").await;
    let grants = admin.json("/api/v1/role-grants").await;
    let first = grants["items"][0]["id"].as_u64().unwrap();
    let message = expect_error(
        session
            .delete(&format!("/api/v1/role-grants/{first}"))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert!(message.contains("organisation-wide"), "{message}");
    expect_error(
        session
            .post("/api/v1/positions", json!({ "name": "Boss" }))
            .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(session.get("/api/v1/api-tokens").await, 403, "forbidden").await;
}
