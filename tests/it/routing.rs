//! Routing over the real server: a customer's message is classified and offered to the
//! employee best able to answer; a decline or a missed offer moves it to the next; acceptance
//! assigns it; every decision is recorded with its scores.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

struct Agent {
    id: u64,
    session: Session,
    socket: Socket,
}

/// An employee agent with these skills who speaks Chinese and English: their session and id.
pub async fn routing_agent(
    server: &TestServer,
    admin: &Session,
    username: &str,
    skills: Value,
) -> (Session, u64) {
    let session =
        crate::matrix::employee_with_role(server, admin, username, "employee_agent").await;
    let id = session.json("/api/v1/auth/session").await["employee"]["id"]
        .as_u64()
        .unwrap();
    let response = admin
        .patch(
            &format!("/api/v1/routing/agents/{id}"),
            json!({ "skills": skills, "languages": ["zh", "en"] }),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    (session, id)
}

async fn agent(server: &TestServer, admin: &Session, username: &str, skills: Value) -> Agent {
    let (session, id) = routing_agent(server, admin, username, skills).await;
    let cookie = session_cookie(server, username, CHANGED_PASSWORD).await;
    let socket = console_socket(server, &cookie, &server.base)
        .await
        .expect("the console connects");
    Agent {
        id,
        session,
        socket,
    }
}

async fn set_presence(session: &Session, presence: &str) -> reqwest::Response {
    session
        .send(
            reqwest::Method::PUT,
            "/api/v1/routing/me/presence",
            Some(json!({ "presence": presence })),
        )
        .await
}

/// The next frame of this type, skipping others (message announcements and the like).
async fn next_of_type(socket: &mut Socket, kind: &str, wait: Duration) -> Option<Value> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        let event = next_event(socket, left).await?;
        if event["type"] == kind {
            return Some(event);
        }
    }
}

/// Policy versions 2 ("skills first": skill fit weighs 6) and 3 ("skills ignored": 0), the
/// other weights the defaults.
pub async fn add_skill_policies(admin: &Session) {
    for (note, skill_fit) in [("skills first", 6.0), ("skills ignored", 0.0)] {
        admin
            .create(
                "/api/v1/routing/policies",
                json!({ "note": note, "weights": { "skill_fit": skill_fit, "past_contact": 2.0, "language": 1.0, "spare_capacity": 1.0, "idle_time": 1.0, "fairness": 1.5, "location": 0.5, "part_time": 1.0 } }),
            )
            .await;
    }
}

/// An API channel "App": its id and signing secret.
async fn api_channel(admin: &Session) -> (u64, String) {
    let channel = admin
        .create("/api/v1/channels", json!({ "kind": "api", "name": "App" }))
        .await;
    (
        channel["channel"]["id"].as_u64().unwrap(),
        channel["signing_secret"].as_str().unwrap().to_string(),
    )
}

async fn ask(server: &TestServer, channel: u64, secret: &str, key: &str, text: &str) -> u64 {
    let body = json!({ "type": "message", "message_id": key, "customer": { "external_id": key, "name": "Customer" }, "text": text });
    let answer: Value = post_signed(server, channel, secret, key, &body)
        .await
        .json()
        .await
        .unwrap();
    answer["conversation_id"].as_u64().expect("stored")
}

#[tokio::test]
async fn a_question_is_classified_offered_declined_reoffered_and_accepted() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (channel_id, secret) = api_channel(&admin).await;
    let mut billing = agent(&server, &admin, "billing.wu", json!({ "billing": 5 })).await;
    let mut engineer = agent(&server, &admin, "tech.zhao", json!({ "technical": 5 })).await;
    for a in [&billing, &engineer] {
        let answer = set_presence(&a.session, "online").await;
        assert_eq!(answer.status(), 200);
    }

    let conversation = ask(
        &server,
        channel_id,
        &secret,
        "q1",
        "我上个月的发票金额不对，被重复扣费了两次，请帮我退款",
    )
    .await;
    let offer = next_of_type(
        &mut billing.socket,
        "routing.offer",
        Duration::from_secs(10),
    )
    .await;
    let offer = match offer {
        Some(o) => o,
        None => panic!(
            "no offer: {} {}",
            admin.json("/api/v1/routing/live").await,
            server.log()
        ),
    };
    let offer = &offer["offer"];
    assert_eq!(offer["conversation_id"].as_u64(), Some(conversation));
    assert_eq!(offer["type"], "billing");
    assert_eq!(
        offer["decision"]["chosen"]["agent"].as_u64(),
        Some(billing.id)
    );
    let terms = offer["decision"]["chosen"]["terms"].as_array().unwrap();
    assert!(
        terms
            .iter()
            .any(|t| t["name"] == "skill_fit" && t["value"].as_f64().unwrap() > 0.9),
        "{terms:?}"
    );
    assert!(
        offer["decision"]["runners_up"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["agent"].as_u64() == Some(engineer.id)),
        "the other employee was considered: {offer}"
    );
    let offer_id = offer["offer_id"].as_u64().unwrap();

    // Nobody accepts another's offer, and an unknown offer has ended.
    expect_error(
        engineer
            .session
            .post(
                &format!("/api/v1/routing/offers/{offer_id}/accept"),
                json!({}),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        billing
            .session
            .post("/api/v1/routing/offers/999999/accept", json!({}))
            .await,
        409,
        "conflict",
    )
    .await;

    // Declined: the conversation goes to the next best, never back to the decliner.
    let declined = billing
        .session
        .post(
            &format!("/api/v1/routing/offers/{offer_id}/decline"),
            json!({}),
        )
        .await;
    assert_eq!(declined.status(), 204);
    let ended = next_of_type(
        &mut billing.socket,
        "routing.offer_ended",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(ended["reason"], "declined");
    let second = next_of_type(
        &mut engineer.socket,
        "routing.offer",
        Duration::from_secs(10),
    )
    .await
    .expect("re-offered to the other employee");
    assert_eq!(
        second["offer"]["conversation_id"].as_u64(),
        Some(conversation)
    );
    let second_id = second["offer"]["offer_id"].as_u64().unwrap();
    let mine = engineer.session.json("/api/v1/routing/me").await;
    assert_eq!(mine["offers"][0]["offer_id"].as_u64(), Some(second_id));

    let accepted = engineer
        .session
        .create(
            &format!("/api/v1/routing/offers/{second_id}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(accepted["assignee_id"].as_u64(), Some(engineer.id));
    let detail = engineer
        .session
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(
        detail["conversation"]["assignee_id"].as_u64(),
        Some(engineer.id)
    );

    // Why: both decisions, how each ended, with names.
    let why = admin
        .json(&format!("/api/v1/conversations/{conversation}/routing"))
        .await;
    let record = &why["record"];
    assert_eq!(record["classification"]["type"]["label"], "billing");
    assert_eq!(record["classification"]["language"], "zh");
    let decisions = record["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2, "{why}");
    assert_eq!(decisions[0]["outcome"], "declined");
    assert_eq!(decisions[0]["employee_id"].as_u64(), Some(billing.id));
    assert_eq!(decisions[1]["outcome"], "accepted");
    assert_eq!(
        why["names"][billing.id.to_string()].as_str(),
        Some("billing.wu")
    );
    assert_eq!(why["state"], "assigned");
    assert!(
        why["types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "after_sales")
    );

    // An employee corrects the type; it is stored as a label and shown.
    let relabelled = engineer
        .session
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/conversations/{conversation}/classification"),
            Some(json!({ "type": "after_sales" })),
        )
        .await;
    assert_eq!(relabelled.status(), 200);
    let why = admin
        .json(&format!("/api/v1/conversations/{conversation}/routing"))
        .await;
    assert_eq!(why["record"]["relabel"]["type"], "after_sales");
    expect_error(
        engineer
            .session
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/conversations/{conversation}/classification"),
                Some(json!({ "type": "no spaces allowed" })),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn a_missed_offer_expires_moves_on_and_sets_the_employee_away() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let policy = admin
        .create(
            "/api/v1/routing/policies",
            json!({ "offer_timeout_ms": { "chat": 1500 }, "missed_offers_to_away": 1, "note": "short offers for the test" }),
        )
        .await;
    assert_eq!(policy["policy"]["version"], 2);
    let (channel_id, secret) = api_channel(&admin).await;
    let mut sleeper = agent(&server, &admin, "tech.sun", json!({ "technical": 5 })).await;
    let mut backup = agent(&server, &admin, "tech.qian", json!({ "technical": 2 })).await;
    set_presence(&sleeper.session, "online").await;
    set_presence(&backup.session, "online").await;

    let conversation = ask(
        &server,
        channel_id,
        &secret,
        "q2",
        "The app crashes with error 500 every time I log in after the update",
    )
    .await;
    let first = next_of_type(
        &mut sleeper.socket,
        "routing.offer",
        Duration::from_secs(10),
    )
    .await
    .expect("the stronger specialist is offered first");
    assert_eq!(first["offer"]["type"], "technical");
    assert_eq!(
        first["offer"]["decision"]["policy_version"].as_u64(),
        Some(2)
    );
    // Nobody answers: the offer expires, the sleeper is set away, the other is offered.
    let ended = next_of_type(
        &mut sleeper.socket,
        "routing.offer_ended",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(ended["reason"], "expired");
    let away = next_of_type(
        &mut sleeper.socket,
        "routing.presence",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(away["presence"], "away");
    let second = next_of_type(&mut backup.socket, "routing.offer", Duration::from_secs(10))
        .await
        .expect("moved on to the next employee");
    assert_eq!(
        second["offer"]["conversation_id"].as_u64(),
        Some(conversation)
    );
    let me = sleeper.session.json("/api/v1/routing/me").await;
    assert_eq!(me["settings"]["presence"], "away");

    // The supervisor's live view shows the offer and who is available.
    let live = admin.json("/api/v1/routing/live").await;
    assert_eq!(live["policy_version"], 2);
    assert!(
        live["offers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["conversation_id"].as_u64() == Some(conversation))
    );
    let backup_live = live["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["employee_id"].as_u64() == Some(backup.id))
        .unwrap()
        .clone();
    assert_eq!(backup_live["presence"], "online");
    assert_eq!(backup_live["load"]["chat"], 1, "an offer holds capacity");

    // Bad input gets a clear error.
    expect_error(
        set_presence(&backup.session, "sleeping").await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        admin
            .patch(
                &format!("/api/v1/routing/agents/{}", backup.id),
                json!({ "skills": { "billing": 9 } }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        backup
            .session
            .patch(
                &format!("/api/v1/routing/agents/{}", backup.id),
                json!({ "skills": { "billing": 5 } }),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
}

async fn accept(agent: &Agent, offer: &Value) -> Value {
    let id = offer["offer"]["offer_id"].as_u64().unwrap();
    agent
        .session
        .create(&format!("/api/v1/routing/offers/{id}/accept"), json!({}))
        .await
}

async fn assignee(session: &Session, conversation: u64) -> Option<u64> {
    session
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await["conversation"]["assignee_id"]
        .as_u64()
}

#[tokio::test]
async fn a_question_climbs_the_escalation_path_returns_and_is_transferred_warm() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lanes = admin.json("/api/v1/routing/lanes").await;
    let keys: Vec<&str> = lanes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["vip", "sales", "support", "rnd"], "the default path");
    let (channel_id, secret) = api_channel(&admin).await;
    let mut sales = agent(&server, &admin, "sales.li", json!({ "sales": 3 })).await;
    let mut support = agent(&server, &admin, "support.wang", json!({ "support": 3 })).await;
    let mut engineer = agent(&server, &admin, "rnd.chen", json!({ "rnd": 4 })).await;
    // The engineer answers beside their job: part-time, and in focus.
    let response = admin
        .patch(
            &format!("/api/v1/routing/agents/{}", engineer.id),
            json!({ "mode": { "kind": "part_time", "delay_ms": 600000, "daily_cap": 5 } }),
        )
        .await;
    assert_eq!(response.status(), 200);
    set_presence(&sales.session, "online").await;
    set_presence(&support.session, "online").await;
    set_presence(&engineer.session, "focus").await;

    let conversation = ask(
        &server,
        channel_id,
        &secret,
        "pre1",
        "What does the enterprise plan cost, and is there a discount for 50 seats?",
    )
    .await;
    let offer = next_of_type(&mut sales.socket, "routing.offer", Duration::from_secs(10))
        .await
        .expect("a pre-sales question goes to sales");
    assert_eq!(offer["offer"]["type"], "pre_sales");
    accept(&sales, &offer).await;
    let why = admin
        .json(&format!("/api/v1/conversations/{conversation}/routing"))
        .await;
    assert_eq!(why["record"]["lane_id"], 1, "the sales lane");

    // Sales escalates to tech support with a note; sales keeps it until support accepts.
    expect_error(
        sales
            .session
            .post(
                &format!("/api/v1/conversations/{conversation}/escalate"),
                json!({ "note": "" }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    let escalated = sales
        .session
        .create(
            &format!("/api/v1/conversations/{conversation}/escalate"),
            json!({ "note": "Asks about API rate limits for 50 seats" }),
        )
        .await;
    assert_eq!(escalated["lane_id"], 2);
    assert_eq!(assignee(&admin, conversation).await, Some(sales.id));
    let offer = next_of_type(
        &mut support.socket,
        "routing.offer",
        Duration::from_secs(10),
    )
    .await
    .expect("tech support is offered the escalation");
    assert_eq!(
        offer["offer"]["hand_off_note"],
        "Asks about API rate limits for 50 seats"
    );
    assert_eq!(offer["offer"]["escalated"], true);
    accept(&support, &offer).await;
    assert_eq!(assignee(&admin, conversation).await, Some(support.id));

    // Support escalates to R&D: the engineer in focus, part-time, is reached at once.
    support
        .session
        .create(
            &format!("/api/v1/conversations/{conversation}/escalate"),
            json!({ "note": "Needs the real limit from the gateway team" }),
        )
        .await;
    let offer = next_of_type(
        &mut engineer.socket,
        "routing.offer",
        Duration::from_secs(10),
    )
    .await
    .expect("R&D is offered the escalation despite focus and the part-time delay");
    accept(&engineer, &offer).await;
    assert_eq!(assignee(&admin, conversation).await, Some(engineer.id));
    expect_error(
        engineer
            .session
            .post(
                &format!("/api/v1/conversations/{conversation}/escalate"),
                json!({ "note": "higher?" }),
            )
            .await,
        409,
        "conflict",
    )
    .await;

    // R&D answers and hands it back to its owner before the escalation.
    engineer
        .session
        .create(
            &format!("/api/v1/conversations/{conversation}/return"),
            json!({ "note": "Limit is 600 requests a minute per seat" }),
        )
        .await;
    let offer = next_of_type(
        &mut support.socket,
        "routing.offer",
        Duration::from_secs(10),
    )
    .await
    .expect("the previous owner is offered it back");
    accept(&support, &offer).await;
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(
        detail["conversation"]["assignee_id"].as_u64(),
        Some(support.id)
    );
    assert!(
        detail["conversation"]["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_u64() == Some(engineer.id)),
        "a warm hand-back keeps the engineer in the conversation"
    );
    let texts: Vec<String> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("escalated to Tech support") && t.contains("API rate limits")),
        "the history carries the hand-off: {texts:?}"
    );

    // A warm transfer to a named person who declines: the sender keeps it.
    expect_error(
        support
            .session
            .post(
                &format!("/api/v1/conversations/{conversation}/transfer"),
                json!({ "lane_id": 1, "employee_id": sales.id }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    support
        .session
        .create(
            &format!("/api/v1/conversations/{conversation}/transfer"),
            json!({ "employee_id": sales.id, "mode": "warm", "note": "Wants a quote now" }),
        )
        .await;
    expect_error(
        support
            .session
            .post(
                &format!("/api/v1/conversations/{conversation}/transfer"),
                json!({ "employee_id": engineer.id }),
            )
            .await,
        409,
        "conflict",
    )
    .await;
    let offer = next_of_type(&mut sales.socket, "routing.offer", Duration::from_secs(10))
        .await
        .expect("the named person is offered it");
    assert_eq!(offer["offer"]["hand_off_note"], "Wants a quote now");
    let id = offer["offer"]["offer_id"].as_u64().unwrap();
    let declined = sales
        .session
        .post(&format!("/api/v1/routing/offers/{id}/decline"), json!({}))
        .await;
    assert_eq!(declined.status(), 204);
    let ended = next_of_type(
        &mut support.socket,
        "routing.transfer_ended",
        Duration::from_secs(10),
    )
    .await
    .expect("the sender hears the transfer ended");
    assert_eq!(ended["outcome"], "declined");
    assert_eq!(assignee(&admin, conversation).await, Some(support.id));
    let live = admin.json("/api/v1/routing/live").await;
    let support_live = live["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["employee_id"].as_u64() == Some(support.id))
        .unwrap()
        .clone();
    assert_eq!(
        support_live["load"]["chat"], 1,
        "the sender still counts it"
    );

    // Transferred again, accepted this time.
    support
        .session
        .create(
            &format!("/api/v1/conversations/{conversation}/transfer"),
            json!({ "employee_id": engineer.id, "mode": "blind", "note": "One more question for R&D" }),
        )
        .await;
    let offer = next_of_type(
        &mut engineer.socket,
        "routing.offer",
        Duration::from_secs(10),
    )
    .await
    .expect("a transfer to a named person reaches them in focus");
    accept(&engineer, &offer).await;
    assert_eq!(assignee(&admin, conversation).await, Some(engineer.id));
    let why = admin
        .json(&format!("/api/v1/conversations/{conversation}/routing"))
        .await;
    let outcomes: Vec<&str> = why["record"]["past_transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["accepted", "accepted", "accepted", "declined", "accepted"]
    );
}

#[tokio::test]
async fn a_breached_first_response_escalates_and_alerts_supervisors() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let admin_cookie = session_cookie(&server, "admin", NEW_ADMIN_PASSWORD).await;
    let mut supervisor_socket = console_socket(&server, &admin_cookie, &server.base)
        .await
        .expect("the console connects");
    // Tech support answers within 3 seconds, or R&D is called in.
    let calendar = admin
        .create(
            "/api/v1/routing/calendars",
            json!({ "name": "Always", "time_zone": "Asia/Shanghai",
                "hours": [[[0, 1440]], [[0, 1440]], [[0, 1440]], [[0, 1440]], [[0, 1440]], [[0, 1440]], [[0, 1440]]] }),
        )
        .await;
    expect_error(
        admin
            .post(
                "/api/v1/routing/calendars",
                json!({ "name": "Bad", "time_zone": "Mars/Base", "hours": [[], [], [], [], [], [], []] }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    let lane = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/routing/lanes/2",
            Some(json!({
                "key": "support", "name": "Tech support",
                "types": ["technical", "after_sales", "billing", "complaint"],
                "required_skills": { "support": 1 },
                "escalate_to": 3,
                "calendar_id": calendar["id"],
                "sla": { "first_response_secs": 3 },
                "sla_actions": [
                    { "on": "warning", "action": "notify_supervisors" },
                    { "on": "breached", "clock": "first_response", "action": "escalate" }
                ]
            })),
        )
        .await;
    assert_eq!(lane.status(), 200, "{}", lane.text().await.unwrap());
    let (channel_id, secret) = api_channel(&admin).await;
    let mut engineer = agent(&server, &admin, "rnd.he", json!({ "rnd": 5 })).await;
    set_presence(&engineer.session, "focus").await;

    let conversation = ask(
        &server,
        channel_id,
        &secret,
        "sla1",
        "The device keeps rebooting and shows error E42 after the firmware update",
    )
    .await;
    let alert = next_of_type(
        &mut supervisor_socket,
        "routing.sla",
        Duration::from_secs(15),
    )
    .await
    .expect("supervisors hear of the clock at risk");
    assert_eq!(alert["conversation_id"].as_u64(), Some(conversation));
    assert_eq!(alert["clock"], "first_response");
    assert_eq!(alert["level"], "warning");
    let offer = next_of_type(
        &mut engineer.socket,
        "routing.offer",
        Duration::from_secs(15),
    )
    .await
    .expect("the breach escalates to R&D, reaching the engineer in focus");
    assert_eq!(
        offer["offer"]["conversation_id"].as_u64(),
        Some(conversation)
    );
    assert_eq!(offer["offer"]["escalated"], true);
    assert_eq!(
        offer["offer"]["hand_off_note"],
        "SLA first response target breached"
    );
    let why = admin
        .json(&format!("/api/v1/conversations/{conversation}/routing"))
        .await;
    assert_eq!(why["record"]["lane_id"], 3);
    let fired = why["record"]["sla"]["fired"].as_array().unwrap();
    assert!(
        fired
            .iter()
            .any(|f| f["level"] == "breached" && f["actions"][0] == "escalate"),
        "{why}"
    );
    assert!(why["record"]["escalations"][0]["by"].is_null());
    // The R&D lane's own clock runs now.
    assert_eq!(why["lane"]["key"], "rnd");
    assert_eq!(why["sla"][0]["kind"], "first_response");
    let live = admin.json("/api/v1/routing/live").await;
    assert!(live["sla_risk"].is_array());
    // A lane that a calendar serves keeps the calendar from being deleted.
    expect_error(
        admin
            .delete(&format!("/api/v1/routing/calendars/{}", calendar["id"]))
            .await,
        409,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn a_waiting_web_chat_customer_sees_their_place_in_line() {
    use futures_util::SinkExt;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Shop chat", "settings": { "allowed_origins": [WIDGET_SITE] } }),
        )
        .await;
    let channel = created["channel"]["id"].as_u64().unwrap();
    let mut widgets = Vec::new();
    for (i, text) in ["Is the blue kettle in stock?", "Do you deliver to Suzhou?"]
        .iter()
        .enumerate()
    {
        let session: Value = start_session(&server, channel, WIDGET_SITE, json!({}))
            .await
            .json()
            .await
            .unwrap();
        let token = session["visitor_token"].as_str().unwrap().to_string();
        let mut widget = visitor_socket(&server, channel, &token, 0).await;
        widget
            .send(tokio_tungstenite::tungstenite::Message::Text(
                json!({ "type": "message", "client_id": format!("c{i}"), "text": text })
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        next_of_type(&mut widget, "ack", Duration::from_secs(10))
            .await
            .expect("stored");
        widgets.push(widget);
    }
    // Nobody is online: both wait, first come first served.
    for (i, widget) in widgets.iter_mut().enumerate() {
        let place = next_of_type(widget, "queue", Duration::from_secs(15))
            .await
            .expect("the customer hears their place in line");
        assert_eq!(place["position"].as_u64(), Some(i as u64 + 1));
    }
    let mine = admin.json("/api/v1/conversations").await;
    let first = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .min()
        .unwrap();
    let admin_id = admin.json("/api/v1/auth/session").await["employee"]["id"].clone();
    admin
        .create(
            &format!("/api/v1/conversations/{first}/assign"),
            json!({ "assignee_id": admin_id }),
        )
        .await;
    let taken = next_of_type(&mut widgets[0], "queue", Duration::from_secs(10))
        .await
        .expect("the customer hears someone took it");
    assert!(taken["position"].is_null());
    let moved_up = next_of_type(&mut widgets[1], "queue", Duration::from_secs(15))
        .await
        .expect("the second customer moves up");
    assert_eq!(moved_up["position"], 1);
}

/// Polls until `check` returns something, for at most ten seconds.
async fn within_ten_seconds<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < until, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_experiment_tags_conversations_with_their_arm_reports_and_a_replay_compares_policies() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (channel_id, secret) = api_channel(&admin).await;
    add_skill_policies(&admin).await;

    // Experiments are checked before they are stored.
    for (body, field) in [
        (
            json!({ "name": "x", "control": 2, "candidate": 9 }),
            "candidate",
        ),
        (
            json!({ "name": "x", "control": 2, "candidate": 2 }),
            "candidate",
        ),
        (
            json!({ "name": "x", "candidate": 2, "control": 3, "slice_minutes": 5 }),
            "slice_minutes",
        ),
        (json!({ "name": " ", "candidate": 2 }), "name"),
    ] {
        let message = expect_error(
            admin
                .post("/api/v1/routing/experiments", body.clone())
                .await,
            400,
            "invalid_field",
        )
        .await;
        assert!(message.contains(field), "{body}: {message}");
    }
    let created = admin
        .create(
            "/api/v1/routing/experiments",
            json!({ "name": "Skills weight", "control": 2, "candidate": 3, "slice_minutes": 30, "duration_hours": 24, "service_level_seconds": 120 }),
        )
        .await;
    assert_eq!(created["state"], "draft");
    let id = created["id"].as_u64().unwrap();
    expect_error(
        admin
            .post("/api/v1/routing/experiments/999/start", json!({}))
            .await,
        404,
        "not_found",
    )
    .await;
    let started = admin
        .create(
            &format!("/api/v1/routing/experiments/{id}/start"),
            json!({}),
        )
        .await;
    assert_eq!(started["state"], "running");
    let arm = started["current_arm"].as_str().unwrap().to_owned();
    let version = if arm == "control" { 2 } else { 3 };
    let second = admin
        .create(
            "/api/v1/routing/experiments",
            json!({ "name": "Another", "control": 1, "candidate": 3 }),
        )
        .await;
    expect_error(
        admin
            .post(
                &format!("/api/v1/routing/experiments/{}/start", second["id"]),
                json!({}),
            )
            .await,
        409,
        "conflict",
    )
    .await;
    within_ten_seconds("routing to follow the experiment", async || {
        let live = admin.json("/api/v1/routing/live").await;
        (live["policy_version"] == json!(version) && live["experiment"]["id"] == json!(id))
            .then_some(())
    })
    .await;

    // A question routed now is tagged with the arm, and decided by the arm's policy.
    let mut billing = agent(&server, &admin, "billing.lin", json!({ "billing": 4 })).await;
    assert_eq!(set_presence(&billing.session, "online").await.status(), 200);
    let conversation = ask(
        &server,
        channel_id,
        &secret,
        "exp-1",
        "The invoice charged me twice, please refund",
    )
    .await;
    let offer = next_of_type(
        &mut billing.socket,
        "routing.offer",
        Duration::from_secs(10),
    )
    .await
    .expect("an offer");
    assert_eq!(
        offer["offer"]["decision"]["policy_version"].as_u64(),
        Some(version)
    );
    accept(&billing, &offer).await;
    let routing = admin
        .json(&format!("/api/v1/conversations/{conversation}/routing"))
        .await;
    let variant = &routing["record"]["variant"];
    assert_eq!(variant["experiment_id"].as_u64(), Some(id), "{routing}");
    assert_eq!(variant["arm"], arm.as_str());
    assert_eq!(variant["policy_version"].as_u64(), Some(version));
    billing
        .session
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "Refunded, sorry about that." }),
        )
        .await;
    billing
        .session
        .create(
            &format!("/api/v1/conversations/{conversation}/status"),
            json!({ "status": "resolved" }),
        )
        .await;

    let report = admin
        .json(&format!("/api/v1/routing/experiments/{id}/report"))
        .await;
    let arms = report["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2, "{report}");
    let ours = arms.iter().find(|a| a["arm"] == arm.as_str()).unwrap();
    assert_eq!(ours["conversations"], 1, "{report}");
    assert_eq!(ours["policy_version"].as_u64(), Some(version));
    let metrics = &ours["metrics"];
    assert_eq!(metrics["service_level"]["value"], 1.0, "{report}");
    assert_eq!(metrics["resolution_rate"]["value"], 1.0);
    assert_eq!(metrics["first_contact_resolution"]["value"], 1.0);
    assert!(metrics["csat"]["value"].is_null());
    assert!(
        metrics["service_level"]["low"].is_null(),
        "one slice: no interval"
    );
    assert!(report["difference"]["service_level"]["value"].is_null());

    let stopped = admin
        .create(&format!("/api/v1/routing/experiments/{id}/stop"), json!({}))
        .await;
    assert_eq!(stopped["state"], "finished");
    expect_error(
        admin
            .post(&format!("/api/v1/routing/experiments/{id}/stop"), json!({}))
            .await,
        409,
        "conflict",
    )
    .await;
    within_ten_seconds("the newest policy to route again", async || {
        let live = admin.json("/api/v1/routing/live").await;
        (live["policy_version"] == json!(3) && live["experiment"].is_null()).then_some(())
    })
    .await;
    let listed = admin.json("/api/v1/routing/experiments").await;
    assert_eq!(listed["items"][0]["id"], second["id"], "newest first");
    assert_eq!(listed["items"][1]["state"], "finished");

    // The replay runs the day's recorded traffic through a candidate beside the active policy.
    for (body, field) in [
        (json!({ "policy_version": 99 }), "policy_version"),
        (json!({ "policy_version": 2, "days": 0 }), "days"),
    ] {
        let message = expect_error(
            admin.post("/api/v1/routing/replay", body.clone()).await,
            400,
            "invalid_field",
        )
        .await;
        assert!(message.contains(field), "{body}: {message}");
    }
    let replay = admin
        .create(
            "/api/v1/routing/replay",
            json!({ "policy_version": 2, "days": 1 }),
        )
        .await;
    assert_eq!(replay["conversations"], 1, "{replay}");
    assert!(
        replay["presence_changes"].as_u64().unwrap() >= 1,
        "{replay}"
    );
    let rows = replay["rows"].as_array().unwrap();
    let runs: Vec<&str> = rows.iter().map(|r| r["run"].as_str().unwrap()).collect();
    assert_eq!(runs, ["recorded", "active", "candidate"]);
    assert_eq!(rows[0]["results"]["served"], 1);
    assert_eq!(rows[1]["policy_version"], 3);
    assert_eq!(rows[2]["policy_version"], 2);
    for row in rows {
        let r = &row["results"];
        assert_eq!(
            r["served"].as_u64().unwrap() + r["abandoned"].as_u64().unwrap(),
            1,
            "{row}"
        );
    }
}

#[tokio::test]
async fn outside_working_hours_nothing_is_offered_until_the_shift_starts() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (channel_id, secret) = api_channel(&admin).await;
    // A calendar with no opening hours: whoever works to it is always off shift.
    let closed = admin
        .create(
            "/api/v1/routing/calendars",
            json!({ "name": "Never", "time_zone": "Asia/Shanghai", "hours": [[], [], [], [], [], [], []] }),
        )
        .await;
    let calendar = closed["id"].as_u64().unwrap();
    let mut sales = agent(&server, &admin, "sales.night", json!({ "sales": 3 })).await;
    let path = format!("/api/v1/routing/agents/{}", sales.id);
    for (body, field) in [
        (json!({ "calendar_id": 999 }), "calendar_id"),
        (json!({ "quiet_hours": [[600, 600]] }), "quiet_hours"),
        (json!({ "quiet_hours": [[0, 2000]] }), "quiet_hours"),
    ] {
        let message =
            expect_error(admin.patch(&path, body.clone()).await, 400, "invalid_field").await;
        assert!(message.contains(field), "{body}: {message}");
    }
    let response = admin.patch(&path, json!({ "calendar_id": calendar })).await;
    assert_eq!(response.status(), 200);
    let settings: Value = response.json().await.unwrap();
    assert_eq!(settings["calendar_id"].as_u64(), Some(calendar));
    expect_error(
        admin
            .send(
                reqwest::Method::DELETE,
                &format!("/api/v1/routing/calendars/{calendar}"),
                None,
            )
            .await,
        409,
        "conflict",
    )
    .await;
    set_presence(&sales.session, "online").await;
    let row = within_ten_seconds("the live view to show the shift", async || {
        let live = admin.json("/api/v1/routing/live").await;
        live["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["employee_id"].as_u64() == Some(sales.id) && a["presence"] == "online")
            .cloned()
    })
    .await;
    assert_eq!(row["off_shift"], true, "{row}");
    assert_eq!(row["quiet"], false);

    let conversation = ask(
        &server,
        channel_id,
        &secret,
        "late-1",
        "How much is the enterprise plan for 20 seats?",
    )
    .await;
    assert!(
        next_of_type(&mut sales.socket, "routing.offer", Duration::from_secs(2))
            .await
            .is_none(),
        "nobody is offered a question outside their working hours"
    );
    let why = admin
        .json(&format!("/api/v1/conversations/{conversation}/routing"))
        .await;
    assert_eq!(why["state"], "queued", "{why}");

    // Their working hours begin (the calendar is taken away): the question is offered at once.
    let response = admin.patch(&path, json!({ "calendar_id": null })).await;
    assert_eq!(response.status(), 200);
    let offer = next_of_type(&mut sales.socket, "routing.offer", Duration::from_secs(10))
        .await
        .expect("offered once on shift");
    assert_eq!(
        offer["offer"]["conversation_id"].as_u64(),
        Some(conversation)
    );

    // Quiet hours all day long: the live view says so.
    let response = admin
        .patch(&path, json!({ "quiet_hours": [[0, 1440]] }))
        .await;
    assert_eq!(response.status(), 200);
    within_ten_seconds("the live view to show quiet hours", async || {
        let live = admin.json("/api/v1/routing/live").await;
        live["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["employee_id"].as_u64() == Some(sales.id) && a["quiet"] == true)
            .then_some(())
    })
    .await;
}
