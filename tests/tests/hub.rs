//! The realtime hub against the real server binary: routing by compound and duty, the claim
//! race, resume without loss, restarts, roles, bad input, slow consumers and clean logs.

use hongfan_shared::protocol::{ClientMessage, ErrorCode, Position, ServerMessage, SnapshotReason};
use hongfan_shared::{Change, IncidentId, Report, Seq};
use hongfan_tests::report;
use hongfan_tests::server::{Closed, TestServer, WsClient};
use tokio_tungstenite::tungstenite::Message;

fn report_msg(request_id: &str, report: Report) -> ClientMessage {
    ClientMessage::Report { request_id: request_id.into(), report }
}

/// Sends a report and waits for its acknowledgement.
async fn file_report(
    kiosk: &mut WsClient,
    request_id: &str,
    report: Report,
) -> hongfan_shared::Incident {
    kiosk.send(&report_msg(request_id, report)).await;
    let (ack, _) = kiosk
        .recv_until(|m| matches!(m, ServerMessage::Reported { .. } | ServerMessage::Error(_)))
        .await;
    match ack {
        ServerMessage::Reported { incident, .. } => incident,
        other => panic!("report refused: {other:?}"),
    }
}

async fn on_duty(client: &mut WsClient) {
    client.send(&ClientMessage::Duty { id: 1, on: true }).await;
    client.recv_until(|m| matches!(m, ServerMessage::Roster { .. })).await;
}

/// The next event, and its incident as the client holds it after merging the event's patch.
async fn next_event(client: &mut WsClient) -> (hongfan_shared::Event, hongfan_shared::Incident) {
    match client.recv_until(|m| matches!(m, ServerMessage::Event { .. })).await.0 {
        ServerMessage::Event { event, .. } => {
            let incident = client.incident(event.incident);
            (event, incident)
        }
        _ => unreachable!(),
    }
}

fn position(client: &WsClient, seq: Seq) -> Position {
    let ServerMessage::Hello { epoch, .. } = &client.hello else { unreachable!() };
    Position { epoch: epoch.clone(), seq }
}

fn snapshot_seq(message: &ServerMessage) -> Seq {
    match message {
        ServerMessage::Snapshot { seq, .. } | ServerMessage::Resumed { seq, .. } => *seq,
        other => panic!("not a snapshot: {other:?}"),
    }
}

#[tokio::test]
async fn a_report_reaches_every_on_duty_worker_of_its_compound_and_no_other() {
    let server = TestServer::start().await;
    let (mut wang, mut li, mut zhao) =
        (server.user("wang").await, server.user("li").await, server.user("zhao").await);
    for w in [&mut wang, &mut li, &mut zhao] {
        w.subscribe(None).await;
        on_duty(w).await;
    }
    let mut kiosk = server.kiosk("c1").await;
    kiosk.subscribe(None).await;
    let incident = file_report(&mut kiosk, "r-1", report("c1", "楼道灯坏了")).await;
    assert_eq!(incident.ticket.0, "0001");
    assert_eq!(
        incident.report.phone.as_deref(),
        Some("138****1234"),
        "the kiosk never shows the phone in full"
    );

    for w in [&mut wang, &mut li] {
        let (event, state) = next_event(w).await;
        assert!(matches!(event.change, Change::Reported { .. }));
        assert_eq!(state.report.phone.as_deref(), Some("138****1234"), "masked: `reveal` asks");
        let (alert, _) = w.recv_until(|m| matches!(m, ServerMessage::Alert { .. })).await;
        assert!(
            matches!(alert, ServerMessage::Alert { escalated: false, incident } if incident.id == state.id)
        );
    }
    // zhao (c2) gets nothing of c1: the next thing it sees is c2's own report.
    let mut kiosk2 = server.kiosk("c2").await;
    let other = file_report(&mut kiosk2, "r-2", report("c2", "垃圾没人收")).await;
    let (event, _) = next_event(&mut zhao).await;
    assert_eq!(event.incident, other.id);
}

#[tokio::test]
async fn with_nobody_on_duty_a_report_is_escalated_to_supervisors_and_other_compounds() {
    let server = TestServer::start().await;
    let mut boss = server.user("boss").await;
    boss.subscribe(None).await;
    let mut zhao = server.user("zhao").await;
    zhao.subscribe(None).await;
    on_duty(&mut zhao).await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = file_report(&mut kiosk, "r-1", report("c1", "独居老人家中无人应门")).await;
    let mut seen = Vec::new();
    for client in [&mut boss, &mut zhao] {
        let (alert, before) = client.recv_until(|m| matches!(m, ServerMessage::Alert { .. })).await;
        let ServerMessage::Alert { escalated, incident: shown } = alert else { unreachable!() };
        assert!(escalated);
        assert_eq!(shown.id, incident.id);
        seen.push(before);
    }
    let seen_by_boss = seen.swap_remove(0);
    // The incident records it: the supervisor saw the event before the alert.
    assert!(seen_by_boss.iter().any(|m| matches!(m, ServerMessage::Event { event, .. } if matches!(event.change, Change::Escalated { .. }))));
    let escalation = boss.incident(incident.id);
    assert!(escalation.escalated);
    assert_eq!(escalation.id, incident.id);
}

trait IntoEvent {
    fn into_event(self) -> hongfan_shared::Event;
}
impl IntoEvent for ServerMessage {
    fn into_event(self) -> hongfan_shared::Event {
        match self {
            ServerMessage::Event { event, .. } => event,
            other => panic!("not an event: {other:?}"),
        }
    }
}

#[tokio::test]
async fn of_fifty_simultaneous_claims_exactly_one_succeeds() {
    let server = TestServer::start_with(&["--sockets-per-person", "50"]).await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = file_report(&mut kiosk, "r-1", report("c1", "水管漏水")).await;
    let cookies =
        [server.login("wang").await, server.login("li").await, server.login("boss").await];
    let mut clients = Vec::new();
    for n in 0..50 {
        clients.push(
            WsClient::connect(&server.ws_url(), Some(&cookies[n % 3]), None)
                .await
                .expect("connect"),
        );
    }
    let claim = ClientMessage::Claim { id: 7, incident: incident.id };
    let text = serde_json::to_string(&claim).unwrap();
    // Every claim is on the wire before any answer is read.
    for client in &mut clients {
        client.send_raw(Message::Text(text.clone().into())).await;
    }
    let mut wins = Vec::new();
    let mut holders = Vec::new();
    for client in &mut clients {
        let (answer, _) = client
            .recv_until(|m| matches!(m, ServerMessage::Done { .. } | ServerMessage::Error(_)))
            .await;
        match answer {
            ServerMessage::Done { id: 7, event } => wins.push(event.actor),
            ServerMessage::Error(e) => {
                assert_eq!((e.code, e.id), (ErrorCode::AlreadyClaimed, Some(7)));
                assert!(e.message.starts_with("already claimed by "), "{}", e.message);
                holders.push(e.holder.expect("the error names the holder"));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(wins.len(), 1);
    assert_eq!(holders.len(), 49);
    assert!(holders.iter().all(|h| h == &wins[0]));
}

#[tokio::test]
async fn a_worker_away_during_100_events_gets_exactly_those_100_in_order() {
    let server = TestServer::start_with(&["--report-burst", "1000"]).await;
    let mut wang = server.user("wang").await;
    let (snapshot, _) = wang.subscribe(None).await;
    let seen = snapshot_seq(&snapshot);
    let since = position(&wang, seen);
    wang.close().await;

    // li is on duty, so no report is escalated: exactly a report and 99 notes or reports follow.
    let mut li = server.user("li").await;
    li.subscribe(None).await;
    on_duty(&mut li).await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = file_report(&mut kiosk, "r-1", report("c1", "电梯停了")).await;
    for n in 0..10 {
        li.send(&ClientMessage::Note { id: n, incident: incident.id, text: format!("进展 {n}") })
            .await;
        li.recv_until(|m| matches!(m, ServerMessage::Done { .. })).await;
    }
    for n in 0..89 {
        file_report(&mut kiosk, &format!("more-{n}"), report("c1", &format!("第{n}件"))).await;
    }
    // Another compound's events are not wang's to miss.
    let mut kiosk2 = server.kiosk("c2").await;
    file_report(&mut kiosk2, "r-2", report("c2", "别的小区")).await;

    let mut wang = server.user("wang").await;
    let (resumed, events) = wang.subscribe(Some(since)).await;
    let ServerMessage::Resumed { missed, .. } = resumed else {
        panic!("expected a resume, got {resumed:?}")
    };
    let seqs: Vec<Seq> = events.into_iter().map(|m| m.into_event().seq).collect();
    assert_eq!(missed, 100);
    assert_eq!(seqs, (seen + 1..=seen + 100).collect::<Vec<_>>());
}

#[tokio::test]
async fn across_a_restart_clients_resume_with_nothing_missed_or_doubled() {
    let mut server = TestServer::start().await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    on_duty(&mut wang).await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = file_report(&mut kiosk, "r-1", report("c1", "楼顶漏雨")).await;
    let (first, _) = next_event(&mut wang).await;

    server.stop();
    assert_eq!(wang.closed().await, Closed::Frame(1001, "server shutting down".into()));
    server.restart();

    let mut li = server.user("li").await;
    let mut expected = Vec::new();
    for n in 0..5 {
        li.send(&ClientMessage::Note {
            id: n, incident: incident.id, text: format!("重启后 {n}")
        })
        .await;
        let (done, _) = li.recv_until(|m| matches!(m, ServerMessage::Done { .. })).await;
        let ServerMessage::Done { event, .. } = done else { unreachable!() };
        expected.push(event.seq);
    }
    let mut wang = server.user("wang").await;
    let (resumed, events) = wang.subscribe(Some(position(&wang, first.seq))).await;
    assert!(matches!(resumed, ServerMessage::Resumed { missed: 5, .. }), "{resumed:?}");
    let seqs: Vec<Seq> = events.into_iter().map(|m| m.into_event().seq).collect();
    assert_eq!(seqs, expected);
    // The kiosk's ticket is still there, and a resend of its report stores nothing new.
    let mut kiosk = server.kiosk("c1").await;
    let again = file_report(&mut kiosk, "r-1", report("c1", "楼顶漏雨")).await;
    assert_eq!(again.id, incident.id);
}

#[tokio::test]
async fn a_position_from_another_database_gets_a_snapshot() {
    let server = TestServer::start().await;
    let mut wang = server.user("wang").await;
    let since = Position { epoch: "an-old-database".into(), seq: 3 };
    let (answer, _) = wang.subscribe(Some(since)).await;
    assert!(
        matches!(answer, ServerMessage::Snapshot { reason: SnapshotReason::EpochChanged, .. }),
        "{answer:?}"
    );
    // This database's epoch but a position past its end: not "another database".
    let mut li = server.user("li").await;
    let ahead = position(&li, 1_000);
    let (answer, _) = li.subscribe(Some(ahead)).await;
    assert!(
        matches!(answer, ServerMessage::Snapshot { reason: SnapshotReason::Ahead, .. }),
        "{answer:?}"
    );
}

#[tokio::test]
async fn only_new_valid_reports_count_against_a_devices_rate_limit() {
    let server = TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    // The burst (10) spent on new reports.
    for n in 0..10 {
        file_report(&mut kiosk, &format!("r{n}"), report("c1", &format!("第{n}件"))).await;
    }
    // A kiosk resending after a lost link gets its ticket, not `rate_limited`.
    let again = file_report(&mut kiosk, "r0", report("c1", "第0件")).await;
    assert_eq!(again.ticket.0, "0001");
    // A report refused for what it says is refused for that, and costs nothing.
    let mut bad = report("c1", "x");
    bad.phone = Some("call me".into());
    assert_eq!(refused(&mut kiosk, report_msg("bad", bad)).await, ErrorCode::BadPhone);
    // A new one past the burst is limited.
    let limited = refused(&mut kiosk, report_msg("r10", report("c1", "第10件"))).await;
    assert_eq!(limited, ErrorCode::RateLimited);
}

async fn refused(client: &mut WsClient, message: ClientMessage) -> ErrorCode {
    client.send(&message).await;
    match client
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::Error(_)
                    | ServerMessage::Done { .. }
                    | ServerMessage::Reported { .. }
                    | ServerMessage::Found { .. }
            )
        })
        .await
        .0
    {
        ServerMessage::Error(e) => e.code,
        other => panic!("{message:?} was allowed: {other:?}"),
    }
}

#[tokio::test]
async fn every_role_is_refused_what_it_may_not_do() {
    let server = TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = file_report(&mut kiosk, "r-1", report("c1", "路灯不亮")).await;
    let id = incident.id;
    let actions = |n: u64| {
        vec![
            ClientMessage::Claim { id: n, incident: id },
            ClientMessage::Note { id: n, incident: id, text: "x".into() },
            ClientMessage::HandOver { id: n, incident: id, note: "x".into() },
            ClientMessage::Return { id: n, incident: id, note: "x".into() },
            ClientMessage::Resolve { id: n, incident: id, outcome: "x".into(), proof: None },
            ClientMessage::Reopen { id: n, incident: id, reason: "x".into() },
            ClientMessage::Cancel { id: n, incident: id, reason: "x".into() },
        ]
    };
    let mut head = server.user("head").await;
    for message in actions(1) {
        assert_eq!(
            refused(&mut kiosk, message.clone()).await,
            ErrorCode::Forbidden,
            "kiosk {message:?}"
        );
        assert_eq!(
            refused(&mut head, message.clone()).await,
            ErrorCode::Forbidden,
            "head {message:?}"
        );
    }
    let mut zhao = server.user("zhao").await;
    for message in actions(2) {
        assert_eq!(refused(&mut zhao, message).await, ErrorCode::OtherCompound);
    }
    assert_eq!(
        refused(&mut kiosk, report_msg("r-2", report("c2", "x"))).await,
        ErrorCode::OtherCompound
    );
    assert_eq!(
        refused(&mut head, report_msg("r-3", report("c2", "x"))).await,
        ErrorCode::OtherCompound
    );
    assert_eq!(
        refused(&mut kiosk, ClientMessage::Duty { id: 1, on: true }).await,
        ErrorCode::Forbidden
    );
    let mut boss = server.user("boss").await;
    assert_eq!(
        refused(&mut boss, ClientMessage::Duty { id: 1, on: true }).await,
        ErrorCode::Forbidden
    );
    // Tickets of another compound or another kiosk do not exist for the asker.
    let lookup = |id, phone_tail: Option<&str>| ClientMessage::Lookup {
        id,
        ticket: "0001".into(),
        community: None,
        incident: None,
        phone_tail: phone_tail.map(str::to_owned),
        key: None,
    };
    assert_eq!(refused(&mut zhao, lookup(3, None)).await, ErrorCode::NotFound);
    let mut kiosk2 = server.kiosk("c2").await;
    assert_eq!(refused(&mut kiosk2, lookup(4, Some("1234"))).await, ErrorCode::WrongKey);
    // At the kiosk, a ticket number alone opens nothing, nor does a wrong phone tail.
    assert_eq!(refused(&mut kiosk, lookup(5, None)).await, ErrorCode::WrongKey);
    assert_eq!(refused(&mut kiosk, lookup(5, Some("4321"))).await, ErrorCode::WrongKey);
    kiosk
        .send(&ClientMessage::Lookup {
            id: 5,
            ticket: "1".into(),
            community: None,
            incident: None,
            phone_tail: Some("1234".into()),
            key: None,
        })
        .await;
    let (found, _) = kiosk.recv_until(|m| matches!(m, ServerMessage::Found { .. })).await;
    assert!(
        matches!(found, ServerMessage::Found { id: 5, incident } if incident.id == id && incident.notes.is_empty())
    );
    // A worker holds, a colleague may not resolve.
    let mut wang = server.user("wang").await;
    wang.send(&ClientMessage::Claim { id: 9, incident: id }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { .. })).await;
    let mut li = server.user("li").await;
    assert_eq!(
        refused(
            &mut li,
            ClientMessage::Resolve { id: 10, incident: id, outcome: "x".into(), proof: None }
        )
        .await,
        ErrorCode::NotHolder
    );
    assert_eq!(
        refused(&mut li, ClientMessage::Claim { id: 11, incident: IncidentId(99) }).await,
        ErrorCode::NotFound
    );
    // Account administration is for supervisors.
    let cookie = server.login("wang").await;
    assert_eq!(server.post("/api/admin/people/li/disable", &cookie).await.as_u16(), 403);
    assert_eq!(server.post("/api/admin/kiosks/kiosk-1/revoke", &cookie).await.as_u16(), 403);
}

#[tokio::test]
async fn handshakes_without_valid_credentials_or_from_a_foreign_origin_are_refused() {
    let server = TestServer::start().await;
    let url = server.ws_url();
    assert_eq!(WsClient::connect(&url, None, None).await.unwrap_err(), Closed::Refused(401));
    let forged = "hongfan_session=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_eq!(
        WsClient::connect(&url, Some(forged), None).await.unwrap_err(),
        Closed::Refused(401)
    );
    assert_eq!(server.login_with("wang", "wrong-password").await.unwrap_err().as_u16(), 401);
    assert_eq!(server.login_with("nobody", "wrong-password").await.unwrap_err().as_u16(), 401);

    let cookie = server.login("wang").await;
    let evil = WsClient::connect(&url, Some(&cookie), Some("http://evil.example")).await;
    assert_eq!(evil.unwrap_err(), Closed::Refused(403));
    let own = WsClient::connect(&url, Some(&cookie), Some(&server.url)).await;
    assert!(own.is_ok(), "the server's own origin is allowed");

    // Revoking a kiosk closes its socket and refuses it from then on.
    let kiosk_cookie = server.pair_kiosk("c1").await;
    let mut kiosk =
        WsClient::connect(&server.kiosk_ws_url(), Some(&kiosk_cookie), None).await.unwrap();
    let boss = server.login("boss").await;
    assert_eq!(server.post("/api/admin/kiosks/kiosk-1/revoke", &boss).await.as_u16(), 200);
    assert!(matches!(kiosk.closed().await, Closed::Frame(4001, _)));
    assert_eq!(
        WsClient::connect(&url, Some(&kiosk_cookie), None).await.unwrap_err(),
        Closed::Refused(401)
    );
    let credential = server.kiosk_credential("c1");
    let body = serde_json::json!({ "credential": credential });
    let status = reqwest::Client::new()
        .post(format!("{}/api/kiosk/pair", server.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 401, "a revoked credential cannot pair again");

    // Disabling an account closes its sockets too.
    let mut wang = WsClient::connect(&url, Some(&cookie), None).await.unwrap();
    assert_eq!(server.post("/api/admin/people/wang/disable", &boss).await.as_u16(), 200);
    assert!(matches!(wang.closed().await, Closed::Frame(4001, _)));
    assert_eq!(
        server.login_with("wang", hongfan_tests::server::PASSWORD).await.unwrap_err().as_u16(),
        401
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let server = TestServer::start().await;
    for _ in 0..5 {
        assert_eq!(server.login_with("li", "wrong-password").await.unwrap_err().as_u16(), 401);
    }
    assert_eq!(
        server.login_with("li", hongfan_tests::server::PASSWORD).await.unwrap_err().as_u16(),
        429
    );
}

#[tokio::test]
async fn bad_input_gets_its_documented_answer_and_the_server_keeps_serving() {
    let server = TestServer::start_with(&["--header-read-timeout", "1s"]).await;
    let mut boss = server.user("boss").await;
    boss.subscribe(None).await;
    let mut wang = server.user("wang").await;
    let cases = [
        ("{not json", ErrorCode::BadJson),
        ("[1,2,3]", ErrorCode::BadMessage),
        (r#"{"id":1}"#, ErrorCode::BadMessage),
        (r#"{"type":"launch_rocket"}"#, ErrorCode::UnknownType),
        (r#"{"type":"claim","id":1}"#, ErrorCode::BadMessage),
        (r#"{"type":"claim","id":"one","incident":1}"#, ErrorCode::BadMessage),
        (r#"{"type":"duty","on":true,"extra":1}"#, ErrorCode::BadMessage),
    ];
    for (text, code) in cases {
        wang.send_raw(Message::Text(text.into())).await;
        let (answer, _) = wang.recv_until(|m| matches!(m, ServerMessage::Error(_))).await;
        let ServerMessage::Error(e) = answer else { unreachable!() };
        assert_eq!(e.code, code, "{text}");
        assert!(!e.message_zh.is_empty());
    }
    // A binary frame and an oversize frame close the connection with their codes.
    wang.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
    assert!(matches!(wang.closed().await, Closed::Frame(1003, _)));
    let mut big = server.user("wang").await;
    big.send_raw(Message::Text("x".repeat(100 << 10).into())).await;
    assert!(matches!(big.closed().await, Closed::Frame(1009, _)));

    // A flood of reports from one device: the burst is taken, then it is told to wait.
    let mut kiosk = server.kiosk("c1").await;
    let mut codes = Vec::new();
    for n in 0..12 {
        kiosk.send(&report_msg(&format!("flood-{n}"), report("c1", "x"))).await;
        let (answer, _) = kiosk
            .recv_until(|m| matches!(m, ServerMessage::Reported { .. } | ServerMessage::Error(_)))
            .await;
        codes.push(match answer {
            ServerMessage::Error(e) => Some(e.code),
            _ => None,
        });
    }
    assert_eq!(codes.iter().filter(|c| c.is_none()).count(), 10);
    assert_eq!(codes[10..], [Some(ErrorCode::RateLimited), Some(ErrorCode::RateLimited)]);

    // Half an HTTP header held open is cut off after the header timeout.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut slowloris = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    slowloris.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut rest = Vec::new();
    let read =
        hongfan_tests::within("the server to cut the connection", slowloris.read_to_end(&mut rest))
            .await;
    // Ended by the server (the wait above has a deadline), without serving the request.
    let answer = String::from_utf8_lossy(&rest);
    assert!(read.is_err() || !answer.contains("200 OK"), "{answer}");
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));

    // Everyone else is unaffected: the supervisor saw all ten reports live.
    let mut reported = 0;
    while reported < 10 {
        if let (ServerMessage::Event { event, .. }, _) =
            boss.recv_until(|m| matches!(m, ServerMessage::Event { .. })).await
        {
            reported += usize::from(matches!(event.change, Change::Reported { .. }));
        }
    }
    let health = reqwest::get(format!("{}/healthz", server.url)).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_consumer_that_never_reads_is_disconnected_with_4008_and_counted() {
    let server = TestServer::start_with(&["--send-queue", "64", "--report-burst", "10000"]).await;
    let pid = server.pid();
    let mut kiosk = server.kiosk("c1").await;
    let mut slow = server.user("wang").await;
    slow.subscribe(None).await;
    let mut boss = server.user("boss").await;
    boss.subscribe(None).await;
    let before = rss_kib(pid);
    let long = "楼上装修噪音很大，".repeat(50);
    // Enough to fill the kernel's socket buffers on loopback (several MB), then its queue.
    for n in 0..4000 {
        let incident = file_report(&mut kiosk, &format!("r-{n}"), report("c1", &long)).await;
        // The supervisor, who reads, keeps up all along.
        boss.recv_until(
            |m| matches!(m, ServerMessage::Event { event, .. } if event.incident == incident.id),
        )
        .await;
    }
    let after = rss_kib(pid);
    assert!(
        server.log_text().contains("code=4008"),
        "the slow consumer was closed as too slow:\n{}",
        server
            .log_text()
            .lines()
            .filter(|l| l.contains("closed by the server"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Its queue was capped (the hub's unit tests hold the cap to the message): counted once.
    let boss_cookie = server.login("boss").await;
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .header("cookie", boss_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("hongfan_slow_consumers_total 1\n"), "{metrics}");
    // Memory is the benchmarks' to measure; printed here for whoever reads the run.
    eprintln!("server RSS {before} KiB before the 4000 reports, {after} KiB after");
    drop(slow);
}

#[tokio::test]
async fn the_logs_of_a_whole_run_hold_no_phone_number_password_or_token() {
    let mut server = TestServer::start().await;
    let phone = "13912345678";
    let cookie = server.login("wang").await;
    let _ = server.login_with("li", "a-wrong-password").await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = file_report(
        &mut kiosk,
        "r-1",
        Report { phone: Some(phone.into()), ..report("c1", "老人需要助餐") },
    )
    .await;
    let mut wang = WsClient::connect(&server.ws_url(), Some(&cookie), None).await.unwrap();
    wang.subscribe(None).await;
    wang.send(&ClientMessage::Claim { id: 1, incident: incident.id }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { .. })).await;
    wang.send(&ClientMessage::Note {
        id: 2,
        incident: incident.id,
        text: format!("已电话联系 {phone}"),
    })
    .await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { .. })).await;
    server.stop();
    let log = server.log_text();
    assert!(log.contains("report stored"), "the run was logged");
    let token = cookie.trim_start_matches("hongfan_session=");
    let secret = server.kiosk_credential("c1");
    for (what, needle) in [
        ("phone", phone),
        ("password", hongfan_tests::server::PASSWORD),
        ("wrong password", "a-wrong-password"),
        ("session token", token),
        ("kiosk secret", secret.split('.').nth(1).unwrap_or_default()),
    ] {
        assert!(!log.contains(needle), "the log holds a {what}");
    }
}

#[tokio::test]
async fn every_request_with_an_id_gets_an_answer_carrying_it() {
    let server = TestServer::start().await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    // An unknown field: refused, and the refusal names the request it refuses.
    wang.send_raw(Message::Text(r#"{"type":"claim","id":41,"incident":1,"x":1}"#.into())).await;
    let (answer, _) = wang.recv_until(|m| matches!(m, ServerMessage::Error(_))).await;
    let ServerMessage::Error(e) = answer else { unreachable!() };
    assert_eq!((e.code, e.id), (ErrorCode::BadMessage, Some(41)));
    // `duty` is answered, and so is its refusal.
    wang.send(&ClientMessage::Duty { id: 42, on: true }).await;
    let (answer, _) = wang.recv_until(|m| matches!(m, ServerMessage::DutySet { .. })).await;
    assert_eq!(answer, ServerMessage::DutySet { id: 42, on: true });
    let mut boss = server.user("boss").await;
    boss.send(&ClientMessage::Duty { id: 43, on: true }).await;
    let (answer, _) = boss.recv_until(|m| matches!(m, ServerMessage::Error(_))).await;
    let ServerMessage::Error(e) = answer else { unreachable!() };
    assert_eq!((e.code, e.id), (ErrorCode::Forbidden, Some(43)));
    // Rating what is not resolved yet says so.
    let mut kiosk = server.kiosk("c1").await;
    let (incident, key) = kiosk.file_slip(report("c1", "x")).await;
    let rate = ClientMessage::Rate {
        id: 44,
        incident: incident.id,
        rating: hongfan_shared::Rating::Satisfied,
        key: Some(key),
        solved: true,
    };
    assert_eq!(refused(&mut kiosk, rate).await, ErrorCode::NotResolved);
}

/// A worker's own duty switch is kept: after a kill -9 and a restart the boards still show them
/// on duty by hand, and a new report in their compound reaches them as their duty's alert (not
/// an escalation for nobody on duty).
#[tokio::test]
async fn a_duty_switch_outlives_a_kill_9_of_the_server() {
    let mut server = TestServer::start().await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    wang.send(&ClientMessage::Duty { id: 1, on: true }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::DutySet { id: 1, on: true })).await;
    drop(wang);
    server.kill();
    server.restart();

    let mut boss = server.user("boss").await;
    boss.subscribe(None).await;
    let on_by_hand = |m: &ServerMessage| {
        matches!(m, ServerMessage::Roster { on_duty }
            if on_duty.iter().any(|d| d.worker.id == "wang" && d.manual))
    };
    hongfan_tests::within("wang on duty by hand after the restart", boss.recv_until(on_by_hand))
        .await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = file_report(&mut kiosk, "r-after", report("c1", "楼道灯坏了")).await;
    let (alert, _) = wang.recv_until(|m| matches!(m, ServerMessage::Alert { .. })).await;
    assert!(
        matches!(alert, ServerMessage::Alert { escalated: false, incident: ref shown } if shown.id == incident.id),
        "{alert:?}"
    );
}
