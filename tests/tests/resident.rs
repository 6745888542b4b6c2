//! The resident's side against the real binary: the slip's code opens the status page and
//! rates, a ticket number alone opens nothing, and photos and voice notes are stored (metadata
//! removed), shown only to those who may see the report, and carried by backup and verify.

use hongfan_shared::protocol::{ClientMessage, ErrorCode, ServerMessage};
use hongfan_shared::{Attachment, AttachmentKind, CategoryId, Report};
use hongfan_tests::report;
use hongfan_tests::server::{TestServer, hongfan};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post_json(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .json(&body)
        .send()
        .await
        .expect("http");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn upload(server: &TestServer, cookie: Option<&str>, bytes: Vec<u8>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().post(format!("{}/api/attachments", server.url));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.body(bytes).send().await.expect("http");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn fetch(
    server: &TestServer,
    cookie: &str,
    incident: u64,
    file: &str,
) -> (StatusCode, Vec<u8>) {
    let response =
        server.get(&format!("/api/incidents/{incident}/attachments/{file}"), cookie).await;
    (response.status(), response.bytes().await.unwrap_or_default().to_vec())
}

/// A small JPEG as a phone camera writes it: an EXIF segment with a location, a comment.
fn photo_with_location() -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8];
    let segment = |marker: u8, body: &[u8]| {
        let len = u16::try_from(body.len() + 2).unwrap().to_be_bytes();
        [&[0xFF, marker][..], &len, body].concat()
    };
    jpeg.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    jpeg.extend(segment(0xE1, b"Exif\0\0GPSLatitude 35.4146N GPSLongitude 116.5871E"));
    jpeg.extend(segment(0xFE, b"taken in room 402"));
    jpeg.extend(segment(0xDB, &[0; 65]));
    jpeg.extend([0xFF, 0xD9]);
    jpeg
}

/// A voice note as Chromium records it (the WebM magic, then anything).
fn voice_note() -> Vec<u8> {
    [&[0x1A, 0x45, 0xDF, 0xA3][..], b"opus voice note of a resident"].concat()
}

fn rate_msg(id: u64, incident: hongfan_shared::IncidentId, key: Option<&str>) -> ClientMessage {
    ClientMessage::Rate {
        id,
        incident,
        rating: hongfan_shared::Rating::Satisfied,
        key: key.map(str::to_owned),
        solved: true,
    }
}

async fn refused(
    client: &mut hongfan_tests::server::WsClient,
    message: ClientMessage,
) -> ErrorCode {
    client.send(&message).await;
    let (answer, _) = client
        .recv_until(|m| matches!(m, ServerMessage::Error(_) | ServerMessage::Done { .. }))
        .await;
    match answer {
        ServerMessage::Error(e) => e.code,
        done => panic!("not refused: {done:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slips_code_opens_the_status_page_and_rates_and_a_ticket_number_alone_opens_nothing() {
    let server = TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    let (incident, key) = kiosk.file_slip(report("c1", "楼道灯坏了")).await;
    assert_eq!(key.len(), 10, "ten digits, typed on the keypad");
    // The code goes to the reporting kiosk only: not in the incident, not in any event.
    assert!(incident.key.is_none());
    let (event, _) = wang.recv_until(|m| matches!(m, ServerMessage::Event { .. })).await;
    assert!(!serde_json::to_string(&event).unwrap().contains(&key), "no board gets the code");

    // The status page: the code opens it, a wrong one or none does not.
    let ticket = incident.ticket.as_str().to_owned();
    let (status, shown) =
        post_json(&server, "/api/status", json!({ "ticket": ticket, "key": key })).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["status"], "reported");
    let text = shown.to_string();
    assert!(
        !text.contains("13800001234") && !text.contains("301") && !text.contains(&key),
        "{text}"
    );
    let wrong =
        post_json(&server, "/api/status", json!({ "ticket": ticket, "key": "0000000000" })).await;
    assert_eq!((wrong.0, wrong.1["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let bare = post_json(&server, "/api/status", json!({ "ticket": ticket })).await;
    assert_eq!(bare.0, StatusCode::BAD_REQUEST, "a ticket number alone is not a slip");

    // The worker claims and resolves; the page follows.
    wang.send(&ClientMessage::Claim { id: 1, incident: incident.id }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 1, .. })).await;
    let (_, shown) =
        post_json(&server, "/api/status", json!({ "ticket": ticket, "key": key })).await;
    assert_eq!(
        (shown["status"].as_str(), shown["holder"].as_str()),
        (Some("claimed"), Some("王芳"))
    );
    let early = post_json(
        &server,
        "/api/status/rate",
        json!({ "ticket": ticket, "key": key, "rating": "satisfied" }),
    )
    .await;
    assert_eq!((early.0, early.1["code"].as_str()), (StatusCode::CONFLICT, Some("not_resolved")));
    wang.send(&ClientMessage::Resolve {
        id: 2,
        incident: incident.id,
        outcome: "已换灯泡".into(),
        proof: None,
    })
    .await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { id: 2, .. })).await;

    // A kiosk rates only with the code (a ticket typed at any kiosk rated nothing before).
    assert_eq!(refused(&mut kiosk, rate_msg(3, incident.id, None)).await, ErrorCode::WrongKey);
    // Codes tried by rating are guesses like any other: they run out.
    let mut codes = Vec::new();
    for n in 0..20u64 {
        let guess = rate_msg(100 + n, incident.id, Some(&format!("{n:010}")));
        codes.push(refused(&mut kiosk, guess).await);
    }
    assert!(codes.contains(&ErrorCode::RateLimited), "{codes:?}");
    let (status, rated) = post_json(
        &server,
        "/api/status/rate",
        json!({ "ticket": ticket, "key": key, "rating": "satisfied" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    assert_eq!(
        (rated["rating"].as_str(), rated["outcome"].as_str()),
        (Some("satisfied"), Some("已换灯泡"))
    );
    let again = post_json(
        &server,
        "/api/status/rate",
        json!({ "ticket": ticket, "key": key, "rating": "dissatisfied" }),
    )
    .await;
    assert_eq!((again.0, again.1["code"].as_str()), (StatusCode::CONFLICT, Some("already_rated")));
    // The rating is the resident's own, from the status page, in the log.
    let (rated_event, _) = wang
        .recv_until(
            |m| matches!(m, ServerMessage::Event { event, .. } if event.change.name() == "rated"),
        )
        .await;
    let ServerMessage::Event { event, .. } = rated_event else { unreachable!() };
    assert_eq!(event.actor.role, hongfan_shared::Role::Resident);

    // The link for the QR code carries the code in its fragment only.
    let (status, link) =
        post_json(&server, "/api/status/link", json!({ "ticket": ticket, "key": key })).await;
    assert_eq!(status, StatusCode::OK);
    assert!(link["link"].as_str().unwrap().ends_with(&format!("/s#{ticket}-{key}")), "{link}");
    assert!(link["qr_svg"].as_str().unwrap().starts_with("<?xml"));

    // The resident's page asks every few seconds, as long as it is open: never refused.
    for _ in 0..40 {
        let (status, _) =
            post_json(&server, "/api/status", json!({ "ticket": ticket, "key": key })).await;
        assert_eq!(status, StatusCode::OK, "the right code is never rate-limited");
    }
}

/// The status page asked from a forwarded address (the server trusts 127.0.0.1 as its proxy).
async fn status_from(server: &TestServer, ip: &str, ticket: &str, key: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{}/api/status", server.url))
        .header("x-forwarded-for", ip)
        .json(&json!({ "ticket": ticket, "key": key }))
        .send()
        .await
        .expect("http")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_behind_one_address_never_lock_a_resident_out_of_their_own_ticket() {
    // One wrong code a minute once spent: a wrong answer then waits a minute.
    let server = TestServer::start_with(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--lookup-burst",
        "10",
        "--lookups-per-minute",
        "1",
    ])
    .await;
    let mut kiosk = server.kiosk("c1").await;
    let (mine, my_key) = kiosk.file_slip(report("c1", "楼道灯坏了")).await;
    let (theirs, _) = kiosk.file_slip(report("c1", "水管漏水")).await;
    let (third, third_key) = kiosk.file_slip(report("c1", "门禁坏了")).await;
    let (mine, theirs, third) =
        (mine.ticket.as_str(), theirs.ticket.as_str(), third.ticket.as_str());
    // A neighbour on the same Wi-Fi guesses at another ticket's code: ten wrong, answered.
    for n in 0..10 {
        let code = format!("{n:010}");
        assert_eq!(status_from(&server, "10.0.0.5", theirs, &code).await, StatusCode::NOT_FOUND);
    }
    // The address is spent: the next wrong code waits for its answer, …
    let (url, their_ticket) = (server.url.clone(), theirs.to_owned());
    let guess = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/api/status"))
            .header("x-forwarded-for", "10.0.0.5")
            .json(&json!({ "ticket": their_ticket, "key": "0000000099" }))
            .send()
            .await
    });
    // … while the resident behind the same address opens their own ticket at once, again and
    // again, as their page does.
    for _ in 0..5 {
        assert_eq!(status_from(&server, "10.0.0.5", mine, &my_key).await, StatusCode::OK);
    }
    assert!(!guess.is_finished(), "the wrong guess is still waiting for its answer");
    guess.abort();
    // Guesses at one ticket from many addresses spend the ticket: the next wrong code from a
    // new address waits, and the ticket's own resident is still answered at once.
    for n in 0..10 {
        let (ip, code) = (format!("10.0.1.{n}"), format!("{n:010}"));
        assert_eq!(status_from(&server, &ip, third, &code).await, StatusCode::NOT_FOUND);
    }
    let url = server.url.clone();
    let third_guess = third.to_owned();
    let guess = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/api/status"))
            .header("x-forwarded-for", "10.0.2.1")
            .json(&json!({ "ticket": third_guess, "key": "0000000099" }))
            .send()
            .await
    });
    assert_eq!(status_from(&server, "10.0.2.2", third, &third_key).await, StatusCode::OK);
    assert!(!guess.is_finished(), "a wrong guess at a spent ticket waits for its answer");
    guess.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_report_says_where() {
    let server = TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    let nowhere = Report {
        building: String::new(),
        unit: String::new(),
        room: String::new(),
        ..report("c1", "x")
    };
    kiosk.send(&ClientMessage::Report { request_id: "r-nowhere".into(), report: nowhere }).await;
    let (answer, _) = kiosk.recv_until(|m| matches!(m, ServerMessage::Error(_))).await;
    let ServerMessage::Error(e) = answer else { unreachable!() };
    assert_eq!((e.code, e.request_id.as_deref()), (ErrorCode::NoPlace, Some("r-nowhere")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_and_voice_notes_are_kept_without_metadata_and_shown_only_to_who_may_see_them() {
    let mut server = TestServer::start().await;
    let kiosk_cookie = server.pair_kiosk("c1").await;
    // Nobody without a session; nothing that is not a photo or a voice note; nothing too big.
    assert_eq!(upload(&server, None, voice_note()).await.0, StatusCode::UNAUTHORIZED);
    let (status, refusal) =
        upload(&server, Some(&kiosk_cookie), b"#!/bin/sh\nrm -rf /".to_vec()).await;
    assert_eq!(
        (status, refusal["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("bad_attachment"))
    );
    let huge = [&[0xFF, 0xD8, 0xFF][..], &vec![0; 1 << 20]].concat();
    assert_eq!(
        upload(&server, Some(&kiosk_cookie), huge).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let (status, photo) = upload(&server, Some(&kiosk_cookie), photo_with_location()).await;
    assert_eq!(status, StatusCode::OK, "{photo}");
    let photo: Attachment = serde_json::from_value(photo).unwrap();
    assert_eq!((photo.kind, photo.mime.as_str()), (AttachmentKind::Photo, "image/jpeg"));
    let (_, voice) = upload(&server, Some(&kiosk_cookie), voice_note()).await;
    let voice: Attachment = serde_json::from_value(voice).unwrap();

    // A report names them; one that names a file never uploaded is refused.
    let mut kiosk = server.kiosk("c1").await;
    let bogus = Attachment { id: "ab".repeat(32), ..voice.clone() };
    let with_bogus = Report { attachments: vec![bogus], ..report("c1", "x") };
    kiosk.send(&ClientMessage::Report { request_id: "r-bogus".into(), report: with_bogus }).await;
    let (answer, _) = kiosk.recv_until(|m| matches!(m, ServerMessage::Error(_))).await;
    assert!(matches!(answer, ServerMessage::Error(e) if e.code == ErrorCode::BadAttachments));
    let elderly = Report {
        category: CategoryId("elderly".into()),
        attachments: vec![photo.clone(), voice.clone()],
        ..report("c1", "老人摔倒了")
    };
    let private = kiosk.file(elderly).await;
    let plain =
        kiosk.file(Report { attachments: vec![photo.clone()], ..report("c1", "灯坏了") }).await;
    assert_eq!(plain.report.attachments, vec![photo.clone()]);

    let (wang, li, zhao, boss) = (
        server.login("wang").await,
        server.login("li").await,
        server.login("zhao").await,
        server.login("boss").await,
    );
    // The stored photo has lost its location and its comment.
    let (status, stored) = fetch(&server, &wang, plain.id.0, &photo.id).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&stored);
    assert!(!text.contains("GPS") && !text.contains("402"), "metadata removed");
    assert_eq!(&stored[..2], &[0xFF, 0xD8]);
    // Another compound's worker gets nothing; a private case's only to its holder and the 书记.
    assert_eq!(fetch(&server, &zhao, plain.id.0, &photo.id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&server, &li, private.id.0, &voice.id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&server, &boss, private.id.0, &voice.id).await.0, StatusCode::OK);
    let mut wang_ws = server.user("wang").await;
    wang_ws.send(&ClientMessage::Claim { id: 1, incident: private.id }).await;
    wang_ws.recv_until(|m| matches!(m, ServerMessage::Done { id: 1, .. })).await;
    let (status, heard) = fetch(&server, &wang, private.id.0, &voice.id).await;
    assert_eq!((status, heard), (StatusCode::OK, voice_note()));
    // A file that exists, asked for through an incident that does not name it: nothing.
    assert_eq!(fetch(&server, &boss, plain.id.0, &voice.id).await.0, StatusCode::NOT_FOUND);

    // Backup carries them; a restored folder has them and verifies; damage is found.
    let backup = server.dir.path().join("with-attachments.backup");
    let data = server.data_dir();
    let (ok, out) = hongfan(&["backup", backup.to_str().unwrap()], &data);
    assert!(ok, "{out}");
    server.stop();
    let restored = server.dir.path().join("restored");
    let (ok, out) = hongfan(&["restore", backup.to_str().unwrap()], &restored);
    assert!(ok && out.contains("2 attachments"), "{out}");
    let (ok, out) = hongfan(&["verify"], &restored);
    assert!(ok && out.contains("2 attachments"), "{out}");
    std::fs::write(restored.join("attachments").join(&voice.id), b"damaged").unwrap();
    let (ok, out) = hongfan(&["verify"], &restored);
    assert!(!ok && out.contains(&format!("attachment {} is damaged", voice.id)), "{out}");
}
