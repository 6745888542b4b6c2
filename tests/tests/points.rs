//! 楼长积分 against the real binary: a 代报 confirmed (resolved), a 回访 and a patrol round each
//! earn the community's points exactly once, killed with SIGKILL right after the acknowledgement
//! and started again; reopening and resolving again earns nothing twice; a supervisor corrects
//! with a reason (the ledger keeps both); the year's standings export as CSV Excel opens.

use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_shared::{Rating, Report};
use hongfan_tests::report;
use hongfan_tests::server::{TestServer, WsClient};
use serde_json::{Value, json};

async fn done(client: &mut WsClient, message: ClientMessage) {
    let answer = client.ask(&message).await;
    assert!(matches!(answer, ServerMessage::Done { .. }), "{answer:?}");
}

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    cookie: &str,
    body: Option<Value>,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", server.url);
    let request = match method {
        "POST" => client.post(url).header("origin", &server.url).json(&body.unwrap_or(Value::Null)),
        _ => client.get(url),
    };
    let response = request.header("cookie", cookie).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn standings(server: &TestServer) -> Value {
    let boss = server.login("boss").await;
    let (status, board) = server.get_json("/api/points", &boss).await;
    assert_eq!(status, 200, "{board}");
    board
}

fn rules(board: &Value) -> Vec<(String, i64)> {
    board["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["award"]["rule"].as_str().unwrap().to_owned(),
                e["award"]["points"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_are_awarded_once_per_deed_across_kill_9_and_corrected_with_a_reason() {
    let mut server = TestServer::start().await;
    // 代报: the building head reports for a resident of 3号楼; a worker resolves it; SIGKILL
    // the moment the resolution is acknowledged.
    let mut head = server.user("head").await;
    let for_resident =
        Report { room: "402".into(), ..report("c1", "402 的老人家里水管漏水") };
    let proxied = head.file(for_resident).await;
    assert_eq!(
        proxied.reported_by.role,
        hongfan_shared::Role::BuildingHead,
        "shows it came through the 楼长"
    );
    let mut wang = server.user("wang").await;
    done(&mut wang, ClientMessage::Claim { id: 1, incident: proxied.id }).await;
    let resolve = |id| ClientMessage::Resolve {
        id,
        incident: proxied.id,
        outcome: "已修好".into(),
        proof: None,
    };
    done(&mut wang, resolve(2)).await;
    server.kill();
    server.restart();
    let board = standings(&server).await;
    assert_eq!(rules(&board), vec![("proxy_report".to_owned(), 2)]);
    assert_eq!(board["ledger"][0]["award"]["incident"], json!(proxied.id.0));
    assert_eq!(
        (board["standings"][0]["head"]["name"].as_str(), board["standings"][0]["year"].as_i64()),
        (Some("周楼长"), Some(2))
    );

    // Reopened and resolved again: the 代报 was confirmed once, and earns once.
    let mut boss = server.user("boss").await;
    done(
        &mut boss,
        ClientMessage::Reopen { id: 1, incident: proxied.id, reason: "居民说还在漏".into() },
    )
    .await;
    let mut wang = server.user("wang").await;
    done(&mut wang, resolve(3)).await;
    // A 回访 by the building head of another resolved report: +1, then SIGKILL.
    let mut kiosk = server.kiosk("c1").await;
    let other = kiosk.file(report("c1", "楼道灯坏了")).await;
    done(&mut wang, ClientMessage::Claim { id: 4, incident: other.id }).await;
    done(
        &mut wang,
        ClientMessage::Resolve {
            id: 5, incident: other.id, outcome: "已换灯".into(), proof: None
        },
    )
    .await;
    // The resident had their time to answer: the office sets it to a moment for the test.
    let boss_cookie = server.login("boss").await;
    let (_, mut community) = server.get_json("/api/community", &boss_cookie).await;
    community["escalation"]["callback_after"] = json!(1);
    let put = reqwest::Client::new()
        .put(format!("{}/api/admin/community", server.url))
        .header("cookie", &boss_cookie)
        .header("origin", &server.url)
        .json(&community)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let mut head = server.user("head").await;
    let callback = ClientMessage::Rate {
        id: 6,
        incident: other.id,
        rating: Rating::Satisfied,
        key: None,
        solved: true,
    };
    done(&mut head, callback).await;
    server.kill();
    server.restart();

    // 巡防: a round of their own building (+1), refused for a building not theirs; SIGKILL.
    let cookie = server.login("head").await;
    let round = json!({ "buildings": ["3号楼"], "checked": "消防通道、楼道杂物", "found": "5楼楼道堆放纸箱" });
    let (status, text) = call(&server, "POST", "/api/patrols", &cookie, Some(round)).await;
    assert_eq!(status, 200, "{text}");
    // A second round the same day is recorded, and earns nothing more.
    let again = json!({ "buildings": ["3号楼"], "checked": "消防通道" });
    let (status, text) = call(&server, "POST", "/api/patrols", &cookie, Some(again)).await;
    assert_eq!(status, 200, "{text}");
    let elsewhere = json!({ "buildings": ["9号楼"], "checked": "消防通道" });
    let (status, text) = call(&server, "POST", "/api/patrols", &cookie, Some(elsewhere)).await;
    assert_eq!((status, text.contains("bad_patrol")), (400, true), "{text}");
    server.kill();
    server.restart();
    let board = standings(&server).await;
    assert_eq!(
        rules(&board),
        vec![("proxy_report".to_owned(), 2), ("callback".to_owned(), 1), ("patrol".to_owned(), 1)]
    );

    // A supervisor corrects, with a reason; a worker may not; a correction of 0 says nothing.
    let boss = server.login("boss").await;
    let fix = json!({ "head": "head", "points": -1, "reason": "巡防记录重复", "incident": null });
    let (status, text) = call(&server, "POST", "/api/points", &boss, Some(fix)).await;
    assert_eq!(status, 200, "{text}");
    let nothing = json!({ "head": "head", "points": 0, "reason": "x" });
    let (status, text) = call(&server, "POST", "/api/points", &boss, Some(nothing)).await;
    assert_eq!((status, text.contains("bad_points")), (400, true), "{text}");
    let wang_cookie = server.login("wang").await;
    let (status, _) = call(
        &server,
        "POST",
        "/api/points",
        &wang_cookie,
        Some(json!({ "head": "head", "points": 5, "reason": "x" })),
    )
    .await;
    assert_eq!(status, 403);
    let board = standings(&server).await;
    assert_eq!(board["standings"][0]["year"], json!(3));
    let last = &board["ledger"][3];
    assert_eq!(
        (
            last["award"]["rule"].as_str(),
            last["award"]["reason"].as_str(),
            last["by"]["name"].as_str()
        ),
        (Some("adjustment"), Some("巡防记录重复"), Some("胡书记"))
    );

    // The year's list, for the 5·20 楼长节, as CSV with a byte-order mark.
    let (status, csv) = call(&server, "GET", "/api/points/export", &boss, None).await;
    assert_eq!(status, 200);
    assert!(csv.starts_with('\u{feff}'), "a BOM for Excel");
    let line = csv.lines().nth(1).unwrap();
    assert!(line.starts_with("1,周楼长,") && line.ends_with(",3"), "{line}");
}
