//! Hostile use against the server (the real binary where a socket matters, the router in this
//! process for the HTTP rules): caps that hold for a socket's whole life, bodies that
//! cannot hold a slot, what each role receives, logins nobody can lock for others, sessions that
//! end, floods of actions, private files, the HTTP edge, and logs nobody can forge.

use std::time::Duration;

use hongfan::store::StoreOptions;
use hongfan::{Clock, ManualClock};
use hongfan_shared::protocol::{ClientMessage, ErrorCode, ServerMessage};
use hongfan_shared::{CategoryId, Change, Report};
use hongfan_tests::api::Api;
use hongfan_tests::server::{Closed, PASSWORD, TestServer, WsClient};
use hongfan_tests::{T0, report, within};
use tokio::io::AsyncWriteExt;

fn report_msg(request_id: &str, report: Report) -> ClientMessage {
    ClientMessage::Report { request_id: request_id.into(), report }
}

async fn file_report(kiosk: &mut WsClient, request_id: &str, report: Report) -> u64 {
    kiosk.send(&report_msg(request_id, report)).await;
    match kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await.0 {
        ServerMessage::Reported { incident, .. } => incident.id.0,
        _ => unreachable!(),
    }
}

/// An answer with a correlation id: `Done`, `Revealed` or the `Error` for it.
async fn answer(client: &mut WsClient) -> ServerMessage {
    client
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::Done { .. }
                    | ServerMessage::Revealed { .. }
                    | ServerMessage::Error(_)
            )
        })
        .await
        .0
}

fn code(message: &ServerMessage) -> Option<ErrorCode> {
    match message {
        ServerMessage::Error(e) => Some(e.code),
        _ => None,
    }
}

#[tokio::test]
async fn connection_caps_hold_for_a_sockets_whole_life_per_server_account_and_address() {
    // Two connections in all: both upgraded, the third is not taken.
    let server = TestServer::start_with(&["--max-connections", "2"]).await;
    let cookies = [server.login("wang").await, server.login("li").await];
    let cookie = server.login("zhao").await;
    // Logging in took a slot while its connection lasted: retry until those have closed.
    let connect = |cookie: String| {
        let url = server.ws_url();
        within("a socket under the cap", async move {
            loop {
                if let Ok(socket) = WsClient::connect(&url, Some(&cookie), None).await {
                    return socket;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let (a, b) = (connect(cookies[0].clone()).await, connect(cookies[1].clone()).await);
    // Both slots are the upgraded sockets' now.
    let third = tokio::time::timeout(
        hongfan_tests::DEADLINE,
        WsClient::connect(&server.ws_url(), Some(&cookie), None),
    )
    .await
    .expect("refused at once, not hung");
    assert!(third.is_err(), "a third socket beyond --max-connections 2");
    drop((a, b));

    // One kiosk credential (on a public device) opens two sockets, not forty.
    let server = TestServer::start().await;
    let kiosk = server.pair_kiosk("c1").await;
    let mut open = Vec::new();
    let mut refused = None;
    for _ in 0..5 {
        match WsClient::connect(&server.kiosk_ws_url(), Some(&kiosk), None).await {
            Ok(socket) => open.push(socket),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(open.len(), 2);
    assert_eq!(refused, Some(Closed::Refused(429)));
    // A closed socket gives its place back.
    open.pop().unwrap().close().await;
    let again = within("the place to come back", async {
        loop {
            if let Ok(socket) = WsClient::connect(&server.kiosk_ws_url(), Some(&kiosk), None).await
            {
                return socket;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    drop(again);

    // Per address: behind the trusted proxy, each forwarded address has its own cap.
    let server = TestServer::start_with(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--sockets-per-address",
        "2",
        "--sockets-per-person",
        "10",
    ])
    .await;
    let cookie = server.login("wang").await;
    let from = |ip: &str| {
        let mut request = hongfan_tests::server::cookie_request(&server.ws_url(), &cookie);
        request.headers_mut().insert("x-forwarded-for", ip.parse().unwrap());
        request
    };
    let mut sockets = Vec::new();
    for _ in 0..2 {
        sockets.push(tokio_tungstenite::connect_async(from("10.0.0.7")).await.expect("under cap"));
    }
    let over = tokio_tungstenite::connect_async(from("10.0.0.7")).await;
    assert!(
        matches!(&over, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 429),
        "{over:?}"
    );
    assert!(tokio_tungstenite::connect_async(from("10.0.0.8")).await.is_ok(), "another address");
}

/// Opens `n` connections that send headers promising `length` bytes and then trickle.
async fn slow_posts(server: &TestServer, n: usize, length: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let head = format!(
            "POST /api/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{",
            server.addr()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        held.push(stream);
    }
    held
}

#[tokio::test]
async fn slow_or_large_bodies_cannot_hold_the_server() {
    let server = TestServer::start_with(&["--max-connections", "32", "--body-timeout", "2s"]).await;
    // A body a little over the limit is read to its end and thrown away before the refusal, so
    // the client reads the 413 (a connection closed on unread bytes would reset first). Sent
    // first, while the server has room: at its connection cap it refuses new connections.
    let answer = reqwest::Client::new()
        .post(format!("{}/api/login", server.url))
        .header("content-type", "application/json")
        .body(format!("{{\"login\":\"{}\",\"password\":\"x\"}}", "x".repeat(10_000)))
        .send()
        .await
        .expect("the refusal is read, not reset");
    assert_eq!(answer.status().as_u16(), 413, "small bodies only");
    assert_eq!(answer.json::<serde_json::Value>().await.unwrap()["code"], "too_large");
    // Large promised bodies are refused at once (413): nothing is waited for.
    let _large = slow_posts(&server, 30, 100_000).await;
    within("a real login beside 30 large slow posts", async {
        loop {
            if server.login_with("wang", PASSWORD).await.is_ok() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    // Small ones trickling are cut off when the body deadline passes; real logins get through.
    let _small = slow_posts(&server, 30, 1000).await;
    within("a real login once the trickles are cut off", async {
        loop {
            if server.login_with("li", PASSWORD).await.is_ok() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// A client on another loopback address (127.0.0.2): another address, as the server sees it.
fn from_another_address() -> reqwest::Client {
    reqwest::Client::builder().local_address("127.0.0.2".parse().ok()).build().unwrap()
}

#[tokio::test]
async fn trickling_bodies_from_one_address_leave_room_for_another() {
    let server =
        TestServer::start_with(&["--max-connections", "30", "--body-timeout", "10s"]).await;
    // Thirty logins from one address, each promising 4000 bytes and sending one: the cap.
    let _trickles = slow_posts(&server, 30, 4000).await;
    // Another address logs in and reads /healthz while they trickle, and is never refused.
    let other = from_another_address();
    for probe in 0..12 {
        let login = other
            .post(format!("{}/api/login", server.url))
            .json(&serde_json::json!({ "login": "wang", "password": PASSWORD }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("login {probe} refused: {e}"));
        assert_eq!(login.status().as_u16(), 200, "login {probe}");
        let health = other
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/healthz {probe} refused: {e}"));
        assert_eq!(health.status().as_u16(), 200, "/healthz {probe}");
    }
}

#[tokio::test]
async fn kiosks_and_building_heads_get_no_phone_and_no_notes_live_or_on_resume() {
    let server = TestServer::start().await;
    let mut head = server.user("head").await;
    let (snapshot, _) = head.subscribe(None).await;
    let position = match snapshot {
        ServerMessage::Snapshot { epoch, seq, .. } => {
            hongfan_shared::protocol::Position { epoch, seq }
        }
        other => panic!("{other:?}"),
    };
    let mut kiosk = server.kiosk("c1").await;
    kiosk.subscribe(None).await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    let id = file_report(&mut kiosk, "r1", report("c1", "楼道灯坏了")).await;
    let incident = hongfan_shared::IncidentId(id);
    for (n, message) in [
        ClientMessage::Claim { id: 1, incident },
        ClientMessage::Note { id: 2, incident, text: "SECRET-NOTE 已联系物业".into() },
        ClientMessage::HandOver { id: 3, incident, note: "SECRET-HANDOVER 街道审批".into() },
        ClientMessage::Return { id: 4, incident, note: "SECRET-RETURN 已批".into() },
    ]
    .into_iter()
    .enumerate()
    {
        wang.send(&message).await;
        assert!(code(&answer(&mut wang).await).is_none(), "step {n}");
    }
    let mut live = Vec::new();
    for client in [&mut head, &mut kiosk] {
        let (last, before) = client
            .recv_until(|m| matches!(m, ServerMessage::Event { event, .. } if matches!(event.change, Change::Returned { .. })))
            .await;
        live.push(serde_json::to_string(&before).unwrap() + &serde_json::to_string(&last).unwrap());
    }
    // And again, on resume.
    let mut head = server.user("head").await;
    let (_, resumed) = head.subscribe(Some(position)).await;
    live.push(serde_json::to_string(&resumed).unwrap());
    assert!(!resumed.is_empty());
    for text in live {
        for secret in ["13800001234", "SECRET-NOTE", "SECRET-HANDOVER", "SECRET-RETURN"] {
            assert!(!text.contains(secret), "{secret} reached a shared screen: {text}");
        }
        assert!(text.contains("138****1234"));
    }
}

#[tokio::test]
async fn private_cases_show_details_to_their_holder_and_each_look_at_a_phone_is_recorded() {
    let server = TestServer::start().await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    let mut li = server.user("li").await;
    li.subscribe(None).await;
    let mut kiosk = server.kiosk("c1").await;
    let elderly = Report {
        category: CategoryId("elderly".into()),
        room: "402".into(),
        ..report("c1", "独居老人 PRIVATE-DESCRIPTION")
    };
    let id = file_report(&mut kiosk, "p1", elderly).await;
    let incident = hongfan_shared::IncidentId(id);
    // Before anyone claims it, every worker sees the category and building only.
    for worker in [&mut wang, &mut li] {
        let (event, _) = worker.recv_until(|m| matches!(m, ServerMessage::Event { .. })).await;
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains("PRIVATE-DESCRIPTION") && !text.contains("402"), "{text}");
        assert!(text.contains("3号楼") && text.contains("elderly"), "{text}");
    }
    wang.send(&ClientMessage::Claim { id: 1, incident }).await;
    answer(&mut wang).await;
    let (event, _) = wang
        .recv_until(
            |m| matches!(m, ServerMessage::Event { event, .. } if event.change == Change::Claimed),
        )
        .await;
    assert!(
        serde_json::to_string(&event).unwrap().contains("PRIVATE-DESCRIPTION"),
        "the holder sees it: {}",
        serde_json::to_string(&event).unwrap()
    );
    let (event, _) = li
        .recv_until(
            |m| matches!(m, ServerMessage::Event { event, .. } if event.change == Change::Claimed),
        )
        .await;
    assert!(!serde_json::to_string(&event).unwrap().contains("PRIVATE-DESCRIPTION"));

    // The phone: refused to the other worker, given to the holder, and the look is logged.
    li.send(&ClientMessage::Reveal { id: 2, incident }).await;
    assert_eq!(code(&answer(&mut li).await), Some(ErrorCode::Forbidden));
    wang.send(&ClientMessage::Reveal { id: 3, incident }).await;
    let revealed = answer(&mut wang).await;
    assert_eq!(revealed, ServerMessage::Revealed { id: 3, incident, phone: "13800001234".into() });
    let boss = server.login("boss").await;
    let (_, timeline) = server.get_json(&format!("/api/audit/incidents/{id}"), &boss).await;
    let looks: Vec<_> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["change"]["type"] == "revealed")
        .map(|e| e["event"]["actor"]["id"].clone())
        .collect();
    assert_eq!(looks, [serde_json::json!("wang")], "who looked, for the supervisors");
    assert!(!timeline.to_string().contains("13800001234"), "the audit shows it masked too");
}

/// A login from a forwarded address (the server trusts 127.0.0.1 as its proxy).
async fn login_from(api: &Api, ip: &str, login: &str, password: &str) -> u16 {
    api.login_as(login, password, &[("x-forwarded-for", ip)]).await
}

/// The server behind a proxy at 127.0.0.1, whose X-Forwarded-For names the client.
async fn behind_a_proxy() -> Api {
    Api::open(|s| s.edge.trusted_proxy = Some([127, 0, 0, 1].into())).await
}

#[tokio::test]
async fn nobody_can_lock_out_the_others_and_parallel_guesses_are_counted() {
    let api = behind_a_proxy().await;
    // Guesses at wang's password from one address lock that address out of wang, …
    for _ in 0..5 {
        assert_eq!(login_from(&api, "10.0.0.66", "wang", "guess-guess").await, 401);
    }
    assert_eq!(login_from(&api, "10.0.0.66", "wang", PASSWORD).await, 429);
    // … not wang at the office, nor anyone else at that address's neighbour.
    assert_eq!(login_from(&api, "10.0.0.10", "wang", PASSWORD).await, 200);
    assert_eq!(login_from(&api, "10.0.0.11", "li", PASSWORD).await, 200);
    // Sixteen guesses at once for one account from one address: one is checked at a time, so
    // at most five are checked before the account is spent there.
    let guesses = (0..16).map(|_| login_from(&api, "10.0.0.77", "zhao", "guess-guess"));
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert!((1..=5).contains(&checked), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 16 - checked, "{statuses:?}");
    // Guessing on, one at a time: five are checked in all, however they were sent.
    let mut more = 0;
    while login_from(&api, "10.0.0.77", "zhao", "guess-guess").await == 401 {
        more += 1;
    }
    assert_eq!(checked + more, 5, "{statuses:?}");
    // Without --trusted-proxy, X-Forwarded-For means nothing: it cannot dodge the throttle.
    let plain = Api::open(|_| {}).await;
    for n in 0..6 {
        let status = login_from(&plain, &format!("10.1.0.{n}"), "wang", "guess-guess").await;
        assert_eq!(status, if n < 5 { 401 } else { 429 });
    }
}

#[tokio::test]
async fn right_logins_are_never_counted_as_guesses() {
    let api = behind_a_proxy().await;
    // An office behind one router at the start of a shift: thirty logins in a minute, all in.
    for n in 0..30 {
        let login = ["wang", "li", "zhao"][n % 3];
        assert_eq!(login_from(&api, "10.0.0.1", login, PASSWORD).await, 200, "login {n}");
    }
    // A right login just before does not count as one of the account's five guesses: five
    // wrong passwords are checked, the sixth try is refused, whatever the password.
    for n in 0..5 {
        assert_eq!(login_from(&api, "10.0.0.1", "wang", "guess-guess").await, 401, "guess {n}");
    }
    assert_eq!(login_from(&api, "10.0.0.1", "wang", "guess-guess").await, 429);
    assert_eq!(login_from(&api, "10.0.0.1", "wang", PASSWORD).await, 429);
    // The others at that address still log in.
    assert_eq!(login_from(&api, "10.0.0.1", "li", PASSWORD).await, 200);
}

#[tokio::test]
async fn sessions_end_when_idle_old_or_their_password_changes() {
    use hongfan::auth::{Accounts, AuthError, SessionPolicy};
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store =
        hongfan_tests::open_store_with(dir.path(), &clock, StoreOptions::default()).await.unwrap();
    let policy = SessionPolicy {
        person_idle: Duration::from_secs(3600),
        person_max: Duration::from_secs(8 * 3600),
        kiosk_idle: Duration::from_secs(30 * 86400),
        kiosk_max: Duration::from_secs(365 * 86400),
    };
    let accounts = Accounts::new(store.clone(), clock.clone()).unwrap().with_sessions(policy);
    let operator = hongfan_shared::Principal::operator();
    let wang = hongfan::office::NewPerson {
        login: "wang".into(),
        name: "王芳".into(),
        role: hongfan_shared::Role::Worker,
        community: None,
        compounds: vec![hongfan_shared::CompoundId("c1".into())],
        communities: Vec::new(),
        buildings: Vec::new(),
    };
    accounts.add_user(&operator, wang, PASSWORD).await.unwrap();
    let here: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    let gone =
        |r: Result<hongfan::auth::Authenticated, AuthError>| matches!(r, Err(AuthError::NoSession));

    // Idle: used every 50 minutes it lives; left alone for an hour it ends.
    let token = accounts.login("wang", PASSWORD, here).await.unwrap();
    for _ in 0..3 {
        clock.advance(hongfan_shared::Millis::from_mins(50));
        assert!(accounts.authenticate(&token).await.is_ok());
    }
    clock.advance(hongfan_shared::Millis::from_mins(61));
    assert!(gone(accounts.authenticate(&token).await), "idle past an hour");
    // Absolute: used all the time, it still ends after eight hours.
    let token = accounts.login("wang", PASSWORD, here).await.unwrap();
    for _ in 0..8 {
        clock.advance(hongfan_shared::Millis::from_mins(59));
        assert!(accounts.authenticate(&token).await.is_ok());
    }
    clock.advance(hongfan_shared::Millis::from_mins(30));
    assert!(gone(accounts.authenticate(&token).await), "past eight hours since login");
    // A new password ends every other session; so does disabling, and enabling brings none back.
    let (a, b) = (
        accounts.login("wang", PASSWORD, here).await.unwrap(),
        accounts.login("wang", PASSWORD, here).await.unwrap(),
    );
    accounts.set_password(&operator, "wang", "a-new-password").await.unwrap();
    assert!(gone(accounts.authenticate(&a).await) && gone(accounts.authenticate(&b).await));
    let c = accounts.login("wang", "a-new-password", here).await.unwrap();
    accounts.disable(&operator, "wang").await.unwrap();
    accounts.set_password(&operator, "wang", "another-password").await.unwrap();
    assert!(gone(accounts.authenticate(&c).await), "re-enabling revives no session");
    // The cookie says how long the browser may keep it (not twenty years).
    let server = TestServer::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/login", server.url))
        .json(&serde_json::json!({ "login": "wang", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.contains(&format!("Max-Age={}", 30 * 86400)), "{cookie}");
    let _ = clock.now();
}

#[tokio::test]
async fn one_account_cannot_flood_the_boards_with_notes() {
    let server = TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    let id = file_report(&mut kiosk, "r1", report("c1", "x")).await;
    let incident = hongfan_shared::IncidentId(id);
    let mut wang = server.user("wang").await;
    let mut codes = Vec::new();
    for n in 0..40 {
        wang.send(&ClientMessage::Note { id: n, incident, text: "长".repeat(500) }).await;
        codes.push(code(&answer(&mut wang).await));
    }
    // The notes the incident takes (then `too_many_notes`), within the burst (then
    // `rate_limited`): far from forty long notes pushed to every board.
    let stored = codes.iter().filter(|c| c.is_none()).count();
    assert!(stored <= hongfan_shared::lifecycle::MAX_NOTES, "{codes:?}");
    assert!(codes.contains(&Some(ErrorCode::TooManyNotes)), "{codes:?}");
    assert!(codes.contains(&Some(ErrorCode::RateLimited)), "{codes:?}");
}

#[tokio::test]
async fn the_largest_incident_the_limits_allow_stays_well_under_sleds_blob_threshold() {
    use hongfan_shared::lifecycle::{MAX_NOTES, MAX_NOTES_CHARS, MAX_PLACE_CHARS, MAX_TEXT_CHARS};
    use hongfan_shared::{Action, Actor, Principal, Role, Scope};
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = hongfan_tests::open_store(dir.path(), &clock).await.unwrap();
    // Four-byte characters where text is free, the longest names, every field full.
    let wide = |n: usize| "𠀀".repeat(n);
    let big = Report {
        building: wide(MAX_PLACE_CHARS),
        unit: wide(MAX_PLACE_CHARS),
        room: wide(MAX_PLACE_CHARS),
        description: wide(MAX_TEXT_CHARS),
        phone: Some("+86 138-0000-1234-5678".into()),
        attachments: Vec::new(),
        ..report("c1", "x")
    };
    let id =
        store.report(&hongfan_tests::kiosk("c1"), &"r".repeat(64), big).await.unwrap().incident.id;
    let worker = Principal {
        actor: Actor { id: "w".repeat(32), name: wide(40), role: Role::Worker },
        scope: Scope::Compounds(vec![hongfan_shared::CompoundId("c1".into())]),
    };
    store.act(&worker, id, Action::Claim).await.unwrap();
    let per_note = MAX_NOTES_CHARS / MAX_NOTES;
    for _ in 0..MAX_NOTES {
        store.act(&worker, id, Action::Note { text: wide(per_note) }).await.unwrap();
    }
    let refused = store.act(&worker, id, Action::Note { text: "再一条".into() }).await;
    assert!(refused.is_err(), "the cap holds");
    store.act(&worker, id, Action::HandOver { note: wide(MAX_TEXT_CHARS) }).await.unwrap();
    store
        .act(&worker, id, Action::Resolve { outcome: wide(MAX_TEXT_CHARS), proof: None })
        .await
        .unwrap();
    let state = store.incident(id).await.unwrap().unwrap();
    let size = serde_json::to_vec(&state).unwrap().len();
    eprintln!("largest incident: {size} bytes stored");
    // sled 0.34 writes a value over a quarter of its 512 KiB segment as a separate blob it never
    // fsyncs: stay far below that.
    assert!(size < 48 << 10, "{size} bytes");
}

#[tokio::test]
async fn the_data_folder_and_backups_are_private_to_the_server_account() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = TestServer::start().await;
    let data = server.data_dir();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    let backup = server.dir.path().join("backup.jsonl");
    let out = std::process::Command::new(hongfan_tests::server::binary())
        .arg("backup")
        .arg(&backup)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&backup), 0o600);
    server.stop();
}

#[tokio::test]
async fn the_http_edge_refuses_foreign_hosts_and_cross_site_posts_and_sets_safe_headers() {
    let api = Api::open(|_| {}).await;
    let page = api.get("/board", &[]).await;
    assert!(page.header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    let community = api.get("/api/community", &[]).await;
    assert_eq!(community.header("cache-control"), "no-store");
    assert_eq!(community.header("x-content-type-options"), "nosniff");
    // DNS rebinding: a name that is not ours.
    assert_eq!(api.get("/api/community", &[("host", "evil.example")]).await.status, 421);
    // A cross-site POST that carries a valid cookie.
    let boss = api.login("boss").await;
    let forged = [("cookie", boss.as_str()), ("origin", "https://evil.example")];
    let refused = api.post("/api/admin/people/li/disable", &forged, &serde_json::json!({})).await;
    assert_eq!(refused.status, 403);
    assert!(api.login("li").await.starts_with("hongfan_session="), "li was not disabled");
    // Who may ask is answered before what was sent is read: a worker's patrol is refused as
    // a worker's, whatever its body.
    let wang = api.login("wang").await;
    let patrol = api.post("/api/patrols", &[("cookie", &wang)], &serde_json::json!([])).await;
    assert_eq!(
        (patrol.status, patrol.json()["code"].clone()),
        (403, serde_json::json!("forbidden"))
    );
    // The backup is the operator's alone: a supervisor's session does not open it.
    let backup = api.get("/api/operator/backup", &[("cookie", &boss)]).await;
    assert_eq!(backup.status, 403);
}

#[tokio::test]
async fn a_login_name_cannot_forge_a_log_line_or_leave_a_password_in_the_log() {
    let mut server = TestServer::start().await;
    let forged = "wang\n2026-11-28T00:00:00Z  INFO logged in login=boss";
    assert!(server.login_with(forged, "x").await.is_err());
    assert!(server.login_with("correct-horse-battery", "x").await.is_err());
    server.stop();
    let log = server.log_text();
    assert!(!log.contains("logged in login=boss"), "a forged line: {log}");
    assert!(!log.contains("correct-horse-battery"), "what was typed as a name: {log}");
    assert!(log.contains("login refused"));
}
