//! Running the office while the server runs: every change to people, kiosks, rotas and the
//! community is an event with who made it and what was there before and after; the history
//! survives kill -9, backup and restore; the command line works against a running server; a
//! compound leader manages only their compounds; the rota decides who is alerted.

use hongfan::ManualClock;
use hongfan_shared::protocol::{ClientMessage, ServerMessage, close};
use hongfan_tests::server::{Closed, PASSWORD, TestServer, WsClient, hongfan};
use hongfan_tests::{T0, report};
use reqwest::Method;
use serde_json::{Value, json};

/// Calls the API as `cookie`; answers the status and the JSON body.
async fn call(
    server: &TestServer,
    cookie: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url))
        .header("cookie", cookie)
        .header("origin", &server.url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("http");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The history's events, oldest first, as `(actor, type, before, after)`.
async fn history(server: &TestServer, cookie: &str) -> Vec<Value> {
    let (status, page) =
        call(server, cookie, Method::GET, "/api/admin/history?limit=500", None).await;
    assert_eq!(status, 200, "{page}");
    let mut events = page.as_array().unwrap().clone();
    events.reverse();
    events
}

#[tokio::test]
async fn every_change_to_the_office_is_in_its_history_and_survives_kill_restore_and_backup() {
    let mut server = TestServer::start().await;
    let boss = server.login("boss").await;
    let seeded = history(&server, &boss).await.len();
    let post = Method::POST;
    let steps: Vec<(Method, &str, Option<Value>)> = vec![
        (
            post.clone(),
            "/api/admin/people",
            Some(json!({ "login": "sun", "name": "孙丽", "role": "worker", "compounds": ["c1"] })),
        ),
        (
            Method::PUT,
            "/api/admin/people/sun",
            Some(json!({ "name": "孙丽丽", "compounds": ["c1", "c2"] })),
        ),
        (post.clone(), "/api/admin/people/sun/disable", None),
        (post.clone(), "/api/admin/people/sun/enable", None),
        (post.clone(), "/api/admin/people/sun/reset", None),
        (post.clone(), "/api/admin/kiosks", Some(json!({ "compound": "c3" }))),
        (post.clone(), "/api/admin/kiosks/kiosk-3/pairing", None),
        (post.clone(), "/api/admin/kiosks/kiosk-3/revoke", None),
        (
            Method::PUT,
            "/api/admin/rota/c1",
            Some(json!({
            "week": [[{ "from": 510, "to": 720, "workers": ["wang"] }], [], [], [], [], [], []],
            "otherwise": ["li"], "dates": { "2026-12-25": [] } })),
        ),
    ];
    for (method, path, body) in steps {
        let (status, answer) = call(&server, &boss, method.clone(), path, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
    }
    let (_, mut community) = call(&server, &boss, Method::GET, "/api/community", None).await;
    community["categories"][5]["phrases"] = json!(["楼道灯不亮", "门口台阶坏了"]);
    let (status, answer) =
        call(&server, &boss, Method::PUT, "/api/admin/community", Some(community)).await;
    assert_eq!(status, 200, "{answer}");

    let events = history(&server, &boss).await;
    let changes = &events[seeded..];
    let kinds: Vec<(&str, bool)> = changes
        .iter()
        .map(|e| (e["change"]["type"].as_str().unwrap(), e["change"]["before"].is_object()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("person", false),
            ("person", true),
            ("person", true),
            ("person", true),
            ("person", true),
            ("kiosk", false),
            ("kiosk", true),
            ("kiosk", true),
            ("rota", false),
            ("community", true),
        ]
    );
    for event in changes {
        assert_eq!(event["actor"]["id"], "boss", "{event}");
        assert_eq!(event["actor"]["name"], "胡书记");
        assert!(event["at"].as_i64().unwrap() > 0);
    }
    // Before and after say what changed.
    assert_eq!(changes[1]["change"]["before"]["name"], "孙丽");
    assert_eq!(changes[1]["change"]["after"]["name"], "孙丽丽");
    assert_eq!(changes[1]["change"]["after"]["compounds"], json!(["c1", "c2"]));
    assert_eq!(changes[2]["change"]["before"]["disabled"], false);
    assert_eq!(changes[2]["change"]["after"]["disabled"], true);
    assert_eq!(changes[4]["change"]["after"]["must_change_password"], true);
    assert_eq!(changes[7]["change"]["after"]["revoked"], true);
    assert_eq!(changes[8]["change"]["compound"], "c1");
    assert_eq!(changes[8]["change"]["after"]["otherwise"], json!(["li"]));
    let phrases = &changes[9]["change"]["after"]["categories"][5]["phrases"];
    assert_eq!(phrases, &json!(["楼道灯不亮", "门口台阶坏了"]));
    // Never a password, a secret or a code.
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("argon2") && !text.contains("\"secret\"") && !text.contains("\"code\""),
        "{text}"
    );

    // Acknowledged, so durable: kill -9 the instant after, and it is all there.
    let (status, _) = call(
        &server,
        &boss,
        Method::POST,
        "/api/admin/people",
        Some(json!({ "login": "zhou", "role": "worker", "compounds": ["c3"], "password": "zhou-password" })),
    )
    .await;
    assert_eq!(status, 200);
    server.kill();
    server.restart();
    let boss = server.login("boss").await;
    let after_kill = history(&server, &boss).await;
    assert_eq!(after_kill.len(), events.len() + 1);
    assert_eq!(after_kill[..events.len()], events[..]);
    assert!(server.login_with("zhou", "zhou-password").await.is_ok(), "zhou can log in");

    // Backup (of the running server), restore, verify: the history comes along whole.
    let file = server.dir.path().join("office.jsonl");
    let data = server.data_dir();
    let (ok, out) = tokio::task::spawn_blocking({
        let file = file.clone();
        move || hongfan(&["backup", file.to_str().unwrap()], &data)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    server.stop();
    let restored = server.dir.path().join("restored");
    let (ok, out) = hongfan(&["restore", file.to_str().unwrap()], &restored);
    assert!(ok && out.contains(&format!("{} changes to the office", after_kill.len())), "{out}");
    let (ok, out) = hongfan(&["verify"], &restored);
    assert!(ok, "{out}");
    let copy = TestServer::start_on(restored, &[]);
    let boss = copy.login("boss").await;
    assert_eq!(history(&copy, &boss).await, after_kill);
    let (_, rota) = call(&copy, &boss, Method::GET, "/api/admin/rota/c1", None).await;
    assert_eq!(rota["rota"]["otherwise"], json!(["li"]));
}

/// CI once ran a command the instant the server said it listened, before `server.url` was
/// written: the command took the folder for one with no server and could not open it.
#[tokio::test]
async fn a_server_that_says_it_listens_can_already_be_found_by_the_command_line() {
    let server = TestServer::start().await;
    let url = std::fs::read_to_string(server.data_dir().join("server.url"));
    assert_eq!(url.ok().as_deref(), Some(server.url.as_str()));
}

#[tokio::test]
async fn the_command_line_adds_an_account_through_a_running_server() {
    let server = TestServer::start().await;
    let data = server.data_dir();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        hongfan(&["user", "add", "qian", "--name", "钱伟", "--compound", "c2"], &data)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a printed password")
        .to_owned();
    assert!(server.login_with("qian", &password).await.is_ok(), "{out}");
    // Logged as the operator's change.
    let boss = server.login("boss").await;
    let events = history(&server, &boss).await;
    let last = events.last().unwrap();
    assert_eq!(last["actor"]["id"], "operator");
    assert_eq!(last["change"]["after"]["login"], "qian");
    // The other commands go the same way; the list comes from the server.
    let data = server.data_dir();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        let disabled = hongfan(&["user", "disable", "qian"], &data);
        let listed = hongfan(&["user", "list"], &data);
        let kiosks = hongfan(&["kiosk", "list"], &data);
        (disabled.0 && listed.0 && kiosks.0, format!("{}{}{}", disabled.1, listed.1, kiosks.1))
    })
    .await
    .unwrap();
    assert!(
        ok && out.contains("disabled qian") && out.contains("qian\t钱伟\tWorker\tc2\tdisabled"),
        "{out}"
    );
    assert!(out.contains("kiosk-1\tc1"), "{out}");
    assert_eq!(server.login_with("qian", &password).await.unwrap_err().as_u16(), 401);
}

#[tokio::test]
async fn a_reset_ends_every_session_and_the_one_time_code_must_be_changed_first() {
    let server = TestServer::start().await;
    let boss = server.login("boss").await;
    let mut wang = server.user("wang").await;
    let (status, answer) =
        call(&server, &boss, Method::POST, "/api/admin/people/wang/reset", None).await;
    assert_eq!(status, 200);
    assert!(matches!(wang.closed().await, Closed::Frame(code, _) if code == close::REVOKED));
    assert_eq!(server.login_with("wang", PASSWORD).await.unwrap_err().as_u16(), 401);
    let code = answer["code"].as_str().unwrap();
    let cookie = server.login_with("wang", code).await.expect("the code logs in");
    let (status, me) = call(&server, &cookie, Method::GET, "/api/me", None).await;
    assert_eq!((status, me["must_change_password"].clone()), (200, json!(true)));
    // Nothing else until the password is changed: not the live feed, not the API.
    assert_eq!(
        WsClient::connect(&server.ws_url(), Some(&cookie), None).await.unwrap_err(),
        Closed::Refused(403)
    );
    let change = json!({ "current": code, "new": "wang-own-password" });
    let (status, me) = call(&server, &cookie, Method::POST, "/api/me/password", Some(change)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me.get("must_change_password"), None);
    // The same session goes on, now on the live feed.
    let mut again =
        WsClient::connect(&server.ws_url(), Some(&cookie), None).await.expect("connect");
    again.subscribe(None).await;
    assert!(server.login_with("wang", "wang-own-password").await.is_ok());
}

#[tokio::test]
async fn a_compound_leader_manages_only_their_compounds() {
    let server = TestServer::start().await;
    let boss = server.login("boss").await;
    let leader = json!({ "login": "qian", "name": "钱网格长", "role": "supervisor", "compounds": ["c1"], "password": "leader-password" });
    assert_eq!(call(&server, &boss, Method::POST, "/api/admin/people", Some(leader)).await.0, 200);
    let qian = server.login_with("qian", "leader-password").await.unwrap();
    let (_, people) = call(&server, &qian, Method::GET, "/api/admin/people", None).await;
    let logins: Vec<&str> =
        people.as_array().unwrap().iter().map(|p| p["login"].as_str().unwrap()).collect();
    assert_eq!(logins, ["head", "li", "qian", "wang"], "c1's people only");
    let refused =
        |(status, body): (u16, Value)| (status, body["code"].as_str().unwrap_or("").to_owned());
    let not_yours = (403, "not_yours".to_owned());
    let edit = json!({ "name": "赵敏", "compounds": ["c2"] });
    assert_eq!(
        refused(call(&server, &qian, Method::PUT, "/api/admin/people/zhao", Some(edit)).await),
        not_yours
    );
    assert_eq!(
        refused(call(&server, &qian, Method::POST, "/api/admin/people/zhao/reset", None).await),
        not_yours
    );
    let into_c2 = json!({ "login": "spy", "role": "worker", "compounds": ["c2"] });
    assert_eq!(
        refused(call(&server, &qian, Method::POST, "/api/admin/people", Some(into_c2)).await),
        not_yours
    );
    let above = json!({ "login": "boss2", "role": "supervisor", "compounds": [] });
    assert_eq!(
        refused(call(&server, &qian, Method::POST, "/api/admin/people", Some(above)).await),
        not_yours
    );
    assert_eq!(
        refused(call(&server, &qian, Method::GET, "/api/admin/rota/c2", None).await),
        not_yours
    );
    assert_eq!(
        refused(call(&server, &qian, Method::POST, "/api/admin/kiosks/kiosk-2/revoke", None).await),
        not_yours
    );
    let (_, community) = call(&server, &qian, Method::GET, "/api/community", None).await;
    assert_eq!(
        call(&server, &qian, Method::PUT, "/api/admin/community", Some(community)).await.0,
        403
    );
    // Within c1, all of it.
    assert_eq!(call(&server, &qian, Method::POST, "/api/admin/people/li/reset", None).await.0, 200);
    let (_, kiosks) = call(&server, &qian, Method::GET, "/api/admin/kiosks", None).await;
    assert_eq!(kiosks.as_array().unwrap().len(), 1);
    // The audit and the live feed are c1's.
    let mut kiosk = server.kiosk("c2").await;
    kiosk
        .send(&ClientMessage::Report {
            request_id: "c2".into(), report: report("c2", "井盖松动")
        })
        .await;
    kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await;
    let (_, summary) =
        call(&server, &qian, Method::GET, "/api/audit/summary?from=0&to=9999999999999", None).await;
    assert_eq!(summary["figures"]["reports"], 0, "{summary}");
    let (_, summary) =
        call(&server, &boss, Method::GET, "/api/audit/summary?from=0&to=9999999999999", None).await;
    assert_eq!(summary["figures"]["reports"], 1);
    assert_eq!(call(&server, &qian, Method::GET, "/api/audit/incidents/1", None).await.0, 404);
    let mut feed = WsClient::connect(&server.ws_url(), Some(&qian), None).await.unwrap();
    let (snapshot, _) = feed.subscribe(None).await;
    let ServerMessage::Snapshot { incidents, .. } = snapshot else { panic!("{snapshot:?}") };
    assert!(incidents.is_empty(), "another compound's incident is not a leader's to see");
    // Nor its escalation (nobody is on duty): the next thing the leader hears is c1's report.
    let mut boss_feed = WsClient::connect(&server.ws_url(), Some(&boss), None).await.unwrap();
    boss_feed.subscribe(None).await;
    let escalated = kiosk.file(report("c2", "路灯不亮")).await;
    let (alert, _) = boss_feed
        .recv_until(
            |m| matches!(m, ServerMessage::Alert { incident, .. } if incident.id == escalated.id),
        )
        .await;
    assert!(matches!(alert, ServerMessage::Alert { escalated: true, .. }), "the 书记 hears of it");
    let mut c1 = server.kiosk("c1").await;
    let own = c1.file(report("c1", "楼道灯坏了")).await;
    let (_, before) = feed
        .recv_until(|m| matches!(m, ServerMessage::Event { event, .. } if event.incident == own.id))
        .await;
    let heard: Vec<_> = before
        .iter()
        .filter(|m| matches!(m, ServerMessage::Alert { .. } | ServerMessage::Event { .. }))
        .collect();
    assert!(heard.is_empty(), "nothing of c2 reached the c1 leader: {heard:?}");
    // A worker has no admin at all.
    let wang = server.login("wang").await;
    assert_eq!(call(&server, &wang, Method::GET, "/api/admin/people", None).await.0, 403);
}

#[tokio::test]
async fn the_rota_decides_who_is_alerted_and_a_switch_overrides_it() {
    // Monday 2026-11-02, 09:00 in Shanghai.
    let clock = ManualClock::new(T0);
    let server = TestServer::start_in_process(clock.clone()).await;
    let boss = server.login("boss").await;
    let rota = json!({
        "week": [[{ "from": 510, "to": 720, "workers": ["wang"] }, { "from": 720, "to": 1050, "workers": ["li"] }], [], [], [], [], [], []],
        "otherwise": [],
    });
    let (status, view) = call(&server, &boss, Method::PUT, "/api/admin/rota/c1", Some(rota)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["on_duty"][0]["worker"]["id"], "wang");
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    let mut li = server.user("li").await;
    li.subscribe(None).await;
    let mut kiosk = server.kiosk("c1").await;

    let morning = kiosk.file(report("c1", "morning")).await;
    assert!(wang.alerted(&morning).await, "09:00: wang's shift");
    assert!(!li.alerted(&morning).await);
    assert!(!morning.escalated);

    clock.set(hongfan_shared::Timestamp(T0.0 + 4 * 3_600_000)); // 13:00
    let afternoon = kiosk.file(report("c1", "afternoon")).await;
    assert!(li.alerted(&afternoon).await, "13:00: li's shift");
    assert!(!wang.alerted(&afternoon).await);

    // wang switches himself on: both hear of the next one; li's roster says how.
    wang.send(&ClientMessage::Duty { id: 5, on: true }).await;
    let (roster, _) = li
        .recv_until(|m| matches!(m, ServerMessage::Roster { on_duty } if on_duty.len() == 2))
        .await;
    let ServerMessage::Roster { on_duty } = roster else { unreachable!() };
    let manual: Vec<(&str, bool)> =
        on_duty.iter().map(|d| (d.worker.id.as_str(), d.manual)).collect();
    assert_eq!(manual, [("li", false), ("wang", true)]);
    let both = kiosk.file(report("c1", "both")).await;
    assert!(wang.alerted(&both).await && li.alerted(&both).await);

    // 18:00: nobody's shift, no switch but wang's; once he switches off, a report escalates.
    clock.set(hongfan_shared::Timestamp(T0.0 + 9 * 3_600_000));
    wang.send(&ClientMessage::Duty { id: 6, on: false }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Roster { on_duty } if on_duty.is_empty())).await;
    let evening = kiosk.file(report("c1", "evening")).await;
    assert!(evening.escalated, "nobody on duty at 18:00");
}

/// `hongfan open311 key …`: in the folder while the server is stopped, through the server while
/// it runs; the key printed once opens Open311's POST until it is revoked.
#[tokio::test]
async fn the_command_line_issues_and_revokes_api_keys_in_the_folder_and_through_the_server() {
    let mut server = TestServer::start().await;
    server.stop();
    let data = server.data_dir();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        hongfan(&["open311", "key", "add", "12345 热线"], &data)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("api_key (shown once): "))
        .expect("a printed key")
        .to_owned();
    assert!(out.contains("issued key-1 for 12345 热线 (default)"), "{out}");
    server.restart();
    let post = |key: String| {
        let url = server.url.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{url}/open311/v2/requests.json"))
                .body(format!("api_key={key}&service_code=repair&address_id=c2&description=x"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(key.clone()).await, 200);
    let data = server.data_dir();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        let revoked = hongfan(&["open311", "key", "revoke", "key-1"], &data);
        let listed = hongfan(&["open311", "key", "list"], &data);
        (revoked.0 && listed.0, format!("{}{}", revoked.1, listed.1))
    })
    .await
    .unwrap();
    assert!(ok && out.contains("key-1\tdefault\t12345 热线\trevoked"), "{out}");
    assert_eq!(post(key).await, 403);
    // Logged as the operator's change, without the key's digest.
    let boss = server.login("boss").await;
    let events = history(&server, &boss).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last["actor"]["id"].as_str(), last["change"]["type"].as_str()),
        (Some("operator"), Some("api_key"))
    );
    assert_eq!(last["change"]["after"].get("secret"), None, "{last}");
}
