//! Outbound webhooks against a receiver the test runs: each kind delivered once in the 企业微信,
//! 钉钉 and signed formats (signatures checked), no personal data in a group chat, a receiver
//! that fails or is down gets the delivery when it is back, a kill -9 between commit and
//! delivery still delivers, and a receiver that hangs does not hold up a kiosk (measured).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use hmac::{Hmac, Mac};
use hongfan::ManualClock;
use hongfan_shared::protocol::ClientMessage;
use hongfan_shared::protocol::ErrorCode;
use hongfan_shared::{Millis, Report, Timestamp, Urgency};
use hongfan_tests::report;
use hongfan_tests::server::TestServer;
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug, Clone)]
struct Got {
    uri: String,
    headers: HeaderMap,
    body: Value,
    /// The bytes as they came: what a signature is over.
    raw: Vec<u8>,
}

/// How the receiver answers: 0 takes it (as 企业微信 and 钉钉 do: `{"errcode": 0}`), 1 answers
/// 500, 2 never answers, 3 answers the robots 200 with a refusal (45009: too many messages).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    mode: Arc<AtomicU8>,
}

impl Receiver {
    async fn serve(&self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .fallback(
                |State(me): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes| async move {
                    let refused = axum::Json(
                        serde_json::json!({ "errcode": 45009, "errmsg": "api freq out of limit" }),
                    );
                    match me.mode.load(Ordering::SeqCst) {
                        1 => return (StatusCode::INTERNAL_SERVER_ERROR, refused),
                        2 => std::future::pending::<()>().await,
                        // (A signed receiver has no such answer: any 2xx is taken.)
                        3 if !uri.path().starts_with("/signed") => {
                            return (StatusCode::OK, refused);
                        }
                        _ => {}
                    }
                    let raw = body.to_vec();
                    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                    me.got.lock().unwrap().push(Got { uri: uri.to_string(), headers, body, raw });
                    (
                        StatusCode::OK,
                        axum::Json(serde_json::json!({ "errcode": 0, "errmsg": "ok" })),
                    )
                },
            )
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    }

    fn at(&self, path: &str) -> Vec<Got> {
        self.got.lock().unwrap().iter().filter(|g| g.uri.starts_with(path)).cloned().collect()
    }

    /// Waits, with a deadline, until `path` has received `n` deliveries.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.at(path);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{path}: {} of {n} deliveries: {got:?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What `/api/admin/webhooks` says, as the supervisor with `cookie` sees it.
async fn hook_states(server: &TestServer, cookie: &str) -> Value {
    let url = format!("{}/api/admin/webhooks", server.url);
    let answer = reqwest::Client::new().get(url).header("cookie", cookie).send().await.unwrap();
    answer.json().await.unwrap()
}

fn hmac(key: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn now() -> Timestamp {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Timestamp(i64::try_from(since.as_millis()).unwrap())
}

/// How long four urgent reports take to be acknowledged, sorted.
async fn acks(kiosk: &mut hongfan_tests::server::WsClient, label: &str) -> Vec<Duration> {
    let mut took = Vec::new();
    for n in 0..4 {
        let started = Instant::now();
        let request_id = format!("{label}-{n}");
        kiosk.send(&ClientMessage::Report { request_id, report: urgent("c1", label) }).await;
        kiosk
            .recv_until(|m| matches!(m, hongfan_shared::protocol::ServerMessage::Reported { .. }))
            .await;
        took.push(started.elapsed());
    }
    took.sort();
    took
}

fn urgent(compound: &str, text: &str) -> Report {
    Report { urgency: Urgency::Urgent, ..report(compound, text) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_reaches_its_hooks_once_in_their_formats_signed_and_without_personal_data() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let receiver = Receiver::default();
    receiver.serve(listener).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("webhooks.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[webhook]]
name = "wecom-c1"
url = "{base}/wecom?key=abc"
format = "wecom"
compounds = ["c1"]
kinds = ["urgent_report"]

[[webhook]]
name = "ding-c1"
url = "{base}/ding?access_token=xyz"
format = "dingtalk"
secret = "SECding"
compounds = ["c1"]
kinds = ["escalated"]

[[webhook]]
name = "office"
url = "{base}/signed"
format = "signed"
secret = "office-secret"
kinds = ["urgent_report", "escalated", "breached", "unclaimed"]
"#
        ),
    )
    .unwrap();
    let clock = ManualClock::new(now());
    let server =
        TestServer::start_in_process_with(clock.clone(), |s| s.webhooks = Some(config)).await;
    let mut kiosk = server.kiosk("c1").await;
    // The robots first refuse with a 200 and an errcode (too many messages): not taken.
    receiver.mode.store(3, Ordering::SeqCst);
    // Nobody is on duty: an urgent report is also escalated, in its own group.
    kiosk.file(urgent("c1", "楼道起火冒烟 PRIVATE-TEXT")).await;
    let cookie = server.login("boss").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let states = hook_states(&server, &cookie).await;
        let wecom =
            states.as_array().unwrap().iter().find(|h| h["name"] == "wecom-c1").unwrap().clone();
        if wecom["failures"].as_u64() > Some(0) {
            break wecom;
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded: {wecom}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused["delivered"], 0, "a robot's refusal is not a delivery");
    assert!(refused["last_error"].as_str().unwrap().contains("45009"), "{refused}");
    assert!(!refused.to_string().contains("abc"), "the robot's key never shows: {refused}");
    receiver.mode.store(0, Ordering::SeqCst);

    let wecom = receiver.wait_for("/wecom", 1).await;
    assert_eq!(wecom[0].body["msgtype"], "text");
    let content = wecom[0].body["text"]["content"].as_str().unwrap();
    assert!(content.contains("受理号 0001") && content.contains("【紧急】"), "{content}");
    for private in ["PRIVATE-TEXT", "13800001234", "301"] {
        assert!(!content.contains(private), "{private} in a group chat: {content}");
    }
    let ding = receiver.wait_for("/ding", 1).await;
    assert!(ding[0].body["text"]["content"].as_str().unwrap().contains("无人在岗"));
    let query: std::collections::HashMap<String, String> =
        reqwest::Url::parse(&format!("http://x{}", ding[0].uri))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
    let timestamp = &query["timestamp"];
    let expected = base64::engine::general_purpose::STANDARD
        .encode(hmac("SECding", format!("{timestamp}\nSECding").as_bytes()));
    assert_eq!(query["sign"], expected, "钉钉's signature");
    assert_eq!(query["access_token"], "xyz");

    // 16 minutes on, unclaimed: past the urgent response target and the escalation time.
    clock.advance(Millis::from_mins(16));
    // Any write lets what fell due be logged; this one is escalated in c2 (nobody on duty).
    server.kiosk("c2").await.file(report("c2", "井盖松动")).await;
    let signed = receiver.wait_for("/signed", 5).await;
    let mut kinds: Vec<String> =
        signed.iter().map(|g| g.body["kind"].as_str().unwrap().to_owned()).collect();
    kinds.sort();
    assert_eq!(kinds, ["breached", "escalated", "escalated", "unclaimed", "urgent_report"]);
    for got in &signed {
        let timestamp = got.headers["x-hongfan-timestamp"].to_str().unwrap();
        let mac = hmac("office-secret", &[timestamp.as_bytes(), b".", &got.raw].concat());
        let signature = got.headers["x-hongfan-signature"].to_str().unwrap();
        assert_eq!(signature, format!("sha256={}", hex::encode(mac)), "the signature verifies");
        assert!(got.headers.contains_key("x-hongfan-delivery"));
    }
    // Once each.
    assert_eq!((receiver.at("/wecom").len(), receiver.at("/ding").len()), (1, 1));
    let ids: std::collections::BTreeSet<_> = signed
        .iter()
        .map(|g| g.headers["x-hongfan-delivery"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);

    // Supervisors see how deliveries stand (never a secret); /metrics counts them.
    let states = hook_states(&server, &cookie).await;
    let text = states.to_string();
    assert!(
        !text.contains("office-secret") && !text.contains("SECding") && !text.contains("xyz"),
        "{text}"
    );
    let office = states.as_array().unwrap().iter().find(|h| h["name"] == "office").unwrap();
    assert_eq!(office["delivered"], 5);
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("hongfan_webhook_deliveries_total 7"), "{metrics}");
    assert!(!metrics.contains("hongfan_webhook_failures_total 0"), "the refusals were counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_survives_a_receiver_that_is_down_and_a_kill_9_and_a_hanging_one_holds_nobody_up()
 {
    // A port for the receiver, free now; nothing listens there yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("webhooks.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhook]]\nname = \"office\"\nurl = \"http://127.0.0.1:{port}/hook\"\nformat = \"signed\"\nsecret = \"s\"\nkinds = [\"urgent_report\"]\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let mut server = TestServer::start_with(&["--webhooks", &config]).await;
    let mut kiosk = server.kiosk("c1").await;
    let first = kiosk.file(urgent("c1", "x")).await;
    // Acknowledged, the delivery in the outbox; the receiver is down. Killed now.
    server.kill();

    let receiver = Receiver::default();
    receiver.serve(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    server.restart();
    let got = receiver.wait_for("/hook", 1).await;
    assert_eq!(got[0].body["ticket"], first.ticket.as_str());

    // A receiver that fails gets it when it answers again.
    receiver.mode.store(1, Ordering::SeqCst);
    let mut kiosk = server.kiosk("c1").await;
    let second = kiosk.file(urgent("c1", "y")).await;
    receiver.mode.store(0, Ordering::SeqCst);
    let got = receiver.wait_for("/hook", 2).await;
    assert_eq!(got[1].body["ticket"], second.ticket.as_str());

    // A receiver that never answers: the kiosk's acknowledgements go on (printed, not asserted).
    let answering = acks(&mut kiosk, "answering").await;
    receiver.mode.store(2, Ordering::SeqCst);
    let hanging = acks(&mut kiosk, "hanging").await;
    eprintln!(
        "kiosk acknowledgement with the receiver answering: median {:?}, max {:?}; hanging: median {:?}, max {:?}",
        answering[answering.len() / 2],
        answering[answering.len() - 1],
        hanging[hanging.len() / 2],
        hanging[hanging.len() - 1]
    );
}

/// 上级派单 end to end: the 12345 platform's key posts a work order with its own number and
/// deadline; the deadline is the office's; each change (claimed, handed over, returned,
/// resolved, reopened, cancelled) reaches the platform's webhook, signed, naming the order, a
/// kill -9 right after the resolution included.
#[tokio::test]
async fn a_work_order_from_above_is_answered_upstream_at_each_change_through_a_kill_9() {
    use hongfan_shared::protocol::ServerMessage;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = Receiver::default();
    receiver.serve(listener).await;
    let mut server = TestServer::start().await;
    let boss = server.login("boss").await;
    let url = format!("http://127.0.0.1:{port}/order");
    let (key, secret) = server.upstream_key(&boss, "hotline", &url).await;
    // Due in two hours, sooner than the category's 48.
    let due = now().0 / 1000 * 1000 + 2 * 3_600_000;
    let due_w3c = hongfan::http::open311::w3c(Timestamp(due));
    let incident =
        server.post_order(&key, "JS-20261207-0042", &[("attribute[due]", due_w3c.as_str())]).await;
    // The office answers to the platform's deadline; the board shows where it came from.
    let mut wang = server.user("wang").await;
    let (snapshot, _) = wang.subscribe(None).await;
    let ServerMessage::Snapshot { incidents, .. } = snapshot else { panic!("{snapshot:?}") };
    let order = incidents.iter().find(|i| i.id == incident).unwrap();
    assert_eq!(order.resolve_by, Timestamp(due));
    let work = order.report.order.as_ref().unwrap();
    assert_eq!(
        (work.external_id.as_str(), work.source),
        ("JS-20261207-0042", hongfan_shared::Source::Hotline)
    );

    let act = |id: u64, message: ClientMessage| (id, message);
    for (id, message) in [
        act(1, ClientMessage::Claim { id: 1, incident }),
        act(2, ClientMessage::HandOver { id: 2, incident, note: "需街道协调电工".into() }),
        act(3, ClientMessage::Return { id: 3, incident, note: "街道已派电工".into() }),
        act(
            4,
            ClientMessage::Resolve {
                id: 4, incident, outcome: "已更换灯泡".into(), proof: None
            },
        ),
    ] {
        let answer = wang.ask(&message).await;
        assert!(matches!(answer, ServerMessage::Done { .. }), "{id}: {answer:?}");
    }
    // Killed the instant after the resolution's acknowledgement; the delivery still goes.
    server.kill();
    server.restart();
    let mut boss_feed = server.user("boss").await;
    boss_feed.subscribe(None).await;
    for message in [
        ClientMessage::Reopen { id: 5, incident, reason: "市民反映仍不亮".into() },
        ClientMessage::Cancel { id: 6, incident, reason: "平台撤回工单".into() },
    ] {
        let answer = boss_feed.ask(&message).await;
        assert!(matches!(answer, ServerMessage::Done { .. }), "{answer:?}");
    }
    // Each change at least once, signed with the key's secret, naming the order. Deliveries
    // travel independently: their ids, which begin with the event's position, give the order.
    let expected = ["claimed", "handed_over", "returned", "resolved", "reopened", "cancelled"];
    let deadline = Instant::now() + Duration::from_secs(30);
    let changes = loop {
        let mut got = receiver.at("/order");
        got.sort_by_key(|g| g.body["id"].as_str().unwrap_or_default().to_owned());
        let mut changes: Vec<String> = Vec::new();
        for g in &got {
            let timestamp = g.headers["x-hongfan-timestamp"].to_str().unwrap();
            let signed = [timestamp.as_bytes(), b".", &g.raw].concat();
            let signature = format!("sha256={}", hex::encode(hmac(&secret, &signed)));
            assert_eq!(g.headers["x-hongfan-signature"].to_str().unwrap(), signature);
            assert_eq!(g.body["order"]["external_id"], "JS-20261207-0042", "{:?}", g.body);
            assert_eq!(g.body["order"]["source"], "hotline");
            let change = g.body["order"]["change"].as_str().unwrap().to_owned();
            if changes.last() != Some(&change) && !changes.contains(&change) {
                changes.push(change);
            }
        }
        if changes.len() >= expected.len() || Instant::now() > deadline {
            break changes;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(changes, expected);
    let resolved =
        receiver.at("/order").into_iter().find(|g| g.body["order"]["change"] == "resolved");
    assert_eq!(resolved.unwrap().body["order"]["note"], "已更换灯泡");
}

/// 退单 end to end: the holder asks with a reason for the supervisor, who first keeps the order
/// and then sends it back; the platform hears the claim and the return with the supervisor's
/// reason (never the worker's words), Open311 shows it closed, the audit counts it as the
/// street office's and as sent back, and nothing more is done with it.
#[tokio::test]
async fn a_work_order_is_sent_back_through_a_supervisor_who_alone_tells_the_platform() {
    use hongfan_shared::protocol::ServerMessage;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = Receiver::default();
    receiver.serve(listener).await;
    let server = TestServer::start().await;
    let boss_cookie = server.login("boss").await;
    let url = format!("http://127.0.0.1:{port}/jd");
    let (key, _) = server.upstream_key(&boss_cookie, "street_office", &url).await;
    let incident = server.post_order(&key, "JD-2026-118", &[]).await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    let mut boss = server.user("boss").await;
    boss.subscribe(None).await;
    let done = |answer: &ServerMessage| matches!(answer, ServerMessage::Done { .. });
    let refused = |answer: &ServerMessage| match answer {
        ServerMessage::Error(e) => Some(e.code),
        _ => None,
    };
    let worker_words = ["工人说不归我们（内部）", "已核实：门牌在邻近社区（内部）"];
    let send_back =
        |id, reason: &str| ClientMessage::SendBack { id, incident, reason: reason.into() };
    assert!(done(&wang.ask(&ClientMessage::Claim { id: 1, incident }).await));
    assert!(done(&wang.ask(&send_back(2, worker_words[0])).await));
    assert_eq!(
        refused(&wang.ask(&send_back(3, worker_words[0])).await),
        Some(ErrorCode::SendBackAsked)
    );
    let keep =
        ClientMessage::RefuseSendBack { id: 4, incident, reason: "请先上门核实".into() };
    assert!(done(&boss.ask(&keep).await));
    assert!(done(&wang.ask(&send_back(5, worker_words[1])).await));
    let told = "该地址属于邻近社区，请转派";
    assert!(done(&boss.ask(&send_back(6, told)).await));
    let resolve =
        ClientMessage::Resolve { id: 7, incident, outcome: "已修好".into(), proof: None };
    assert_eq!(refused(&wang.ask(&resolve).await), Some(ErrorCode::SentBack));

    // The platform: claimed, then sent back with the supervisor's reason; nothing of the worker's.
    let got = receiver.wait_for("/jd", 2).await;
    let mut got: Vec<&Value> = got.iter().map(|g| &g.body).collect();
    got.sort_by_key(|b| b["id"].as_str().unwrap_or_default().to_owned());
    let changes: Vec<&str> = got.iter().map(|b| b["order"]["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["claimed", "sent_back"]);
    assert_eq!(got[1]["order"]["note"], told);
    assert_eq!(
        (&got[1]["order"]["status"], &got[1]["order"]["source"]),
        (&json!("sent_back"), &json!("street_office"))
    );
    for body in &got {
        for words in worker_words {
            assert!(!body.to_string().contains(words), "{body}");
        }
    }
    // Open311: closed, with the fixed note, not the reason.
    let public: Value =
        reqwest::get(format!("{}/open311/v2/requests/{}.json", server.url, incident.0))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        (&public[0]["status"], &public[0]["status_notes"]),
        (&json!("closed"), &json!("已退回派单方"))
    );
    // The audit: the street office's, sent back, not a report the office answers for.
    let audit = |path: String| {
        let cookie = boss_cookie.clone();
        async move {
            let answer =
                reqwest::Client::new().get(path).header("cookie", cookie).send().await.unwrap();
            answer.json::<Value>().await.unwrap()
        }
    };
    const EVER: &str = "from=0&to=8640000000000000";
    let summary = audit(format!("{}/api/audit/summary?{EVER}", server.url)).await;
    let origin = summary["by_origin"].as_array().unwrap();
    let street =
        origin.iter().find(|g| g["key"] == "street_office").unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(
        (&street["label"], &street["figures"]["sent_back"], &street["figures"]["reports"]),
        (&json!("街道"), &json!(1), &json!(0))
    );
    assert_eq!(summary["figures"]["sent_back"], 1);
    let rows = audit(format!("{}/api/audit/incidents?only=sent_back&{EVER}", server.url)).await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(
        (&rows[0]["origin"], &rows[0]["external_id"]),
        (&json!("street_office"), &json!("JD-2026-118"))
    );
    let csv = reqwest::Client::new()
        .get(format!("{}/api/audit/export?format=csv&what=incidents&{EVER}", server.url))
        .header("cookie", &boss_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = csv.lines().find(|l| l.contains("JD-2026-118")).unwrap_or_else(|| panic!("{csv}"));
    assert!(line.contains("已退单") && line.contains("街道"), "{line}");
}
