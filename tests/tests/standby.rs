//! A primary and a standby hongfan on a three-node NATS JetStream cluster, all on loopback: the
//! standby follows and shows, refuses writes, and takes over when the primary is killed; every
//! acknowledged report is on it exactly once, a board resumes on it without a snapshot, and the
//! old primary comes back as a standby that refuses writes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hongfan_shared::protocol::{ClientMessage, ErrorCode, Position, ServerMessage};
use hongfan_shared::{Change, Event, Seq};
use hongfan_tests::nats::NatsCluster;
use hongfan_tests::report;
use hongfan_tests::server::{TestServer, WsClient, cookie_request};
use tokio_tungstenite::tungstenite::Message;

/// Short, so that a test's failover is quick; a real pair uses the default, 15 s.
const LEASE_TTL: &str = "2s";
/// How long a failover may take here: the lease, a poll, the takeover, on a busy machine.
const FAILOVER: Duration = Duration::from_secs(30);

fn args(nats: &NatsCluster, node: &str) -> Vec<String> {
    [
        "--nats",
        &nats.urls().join(","),
        "--node-name",
        node,
        "--lease-ttl",
        LEASE_TTL,
        // The kiosks here report far faster than a resident can.
        "--report-burst",
        "10000",
        "--reports-per-minute",
        "100000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// What `/healthz` says: `primary`, `standby`, or why neither.
async fn role(server: &TestServer) -> String {
    let Ok(answer) = reqwest::get(format!("{}/healthz", server.url)).await else {
        return "down".into();
    };
    let text = answer.text().await.unwrap_or_default();
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("role="))
        .map_or_else(|| text.trim().to_owned(), str::to_owned)
}

/// The last sequence number `/healthz` reports.
async fn seq(server: &TestServer) -> Option<Seq> {
    let text = reqwest::get(format!("{}/healthz", server.url)).await.ok()?.text().await.ok()?;
    text.split_whitespace().find_map(|w| w.strip_prefix("seq="))?.parse().ok()
}

/// Polls `check` until it holds, failing after `within`.
async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connects with `cookie`, retrying while the server does not know the session yet (a standby
/// that has not applied it).
async fn connect(url: &str, cookie: &str) -> WsClient {
    let started = Instant::now();
    loop {
        match WsClient::connect(url, Some(cookie), None).await {
            Ok(client) => return client,
            Err(_) if started.elapsed() < FAILOVER => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot connect to {url}: {e:?}"),
        }
    }
}

/// A kiosk that files `count` reports, each sent until one of `servers` acknowledges it (the
/// same request id each time); the acknowledged request ids, with their incidents.
async fn kiosk(
    name: &'static str,
    servers: [String; 2],
    cookie: String,
    compound: &'static str,
    count: usize,
    acked: Arc<Mutex<Vec<(String, u64)>>>,
) {
    let mut target = 0;
    let mut socket = None;
    for n in 0..count {
        let request_id = format!("{name}-{n:04}");
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < FAILOVER * 2, "{request_id} never acknowledged");
            if socket.is_none() {
                let url = format!("{}?as=kiosk", servers[target]);
                let connected = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio_tungstenite::connect_async(cookie_request(&url, &cookie)),
                )
                .await;
                socket = match connected {
                    Ok(Ok((ws, _))) => Some(ws),
                    _ => None,
                };
            }
            let Some(ws) = socket.as_mut() else {
                target = 1 - target;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let message = ClientMessage::Report {
                request_id: request_id.clone(),
                report: report(compound, &format!("第{n}件")),
            };
            let text = serde_json::to_string(&message).unwrap();
            let answer = async {
                ws.send(Message::Text(text.into())).await.ok()?;
                while let Some(Ok(message)) = ws.next().await {
                    let Message::Text(text) = message else { continue };
                    match serde_json::from_str::<ServerMessage>(&text).ok()? {
                        ServerMessage::Reported { request_id: r, incident, .. }
                            if r == request_id =>
                        {
                            return Some(Ok(incident.id.0));
                        }
                        ServerMessage::Error(e)
                            if e.request_id.as_deref() == Some(request_id.as_str()) =>
                        {
                            return Some(Err(e.code));
                        }
                        _ => continue,
                    }
                }
                None
            };
            match tokio::time::timeout(Duration::from_secs(3), answer).await {
                Ok(Some(Ok(incident))) => {
                    acked.lock().unwrap().push((request_id.clone(), incident));
                    break;
                }
                // Refused by a standby, or the server is gone or silent: the other one.
                other => {
                    if let Ok(Some(Err(code))) = &other {
                        assert!(
                            matches!(code, ErrorCode::Standby | ErrorCode::Unavailable),
                            "{request_id}: {code:?}"
                        );
                    }
                    socket = None;
                    target = 1 - target;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

fn events_of(messages: &[ServerMessage]) -> Vec<Event> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Event { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_standby_takes_over_from_a_killed_primary_with_every_acknowledged_report() {
    let nats = NatsCluster::start().await;
    let a_args = args(&nats, "a");
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let mut a = TestServer::start_with(&a_args).await;
    assert_eq!(role(&a).await, "primary", "the first server on an empty log leads");
    let b_data = tempfile::tempdir().unwrap();
    let b_args = args(&nats, "b");
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let b = TestServer::start_on(b_data.path().join("data"), &b_args);
    assert_eq!(role(&b).await, "standby");

    // The standby follows: a board on it (with a session made on the primary) sees a report
    // filed on the primary, live.
    let boss = a.login("boss").await;
    let mut board_b = connect(&b.ws_url(), &boss).await;
    let (snapshot, _) = board_b.subscribe(None).await;
    let ServerMessage::Snapshot { seq: from, .. } = snapshot else { panic!("{snapshot:?}") };
    let (c1, c2) = (a.pair_kiosk("c1").await, a.pair_kiosk("c2").await);
    let mut first = connect(&a.kiosk_ws_url(), &c1).await;
    let filed = first.file(report("c1", "楼道灯坏了")).await;
    let (heard, mut on_board_b) = board_b
        .recv_until(
            |m| matches!(m, ServerMessage::Event { event, .. } if event.incident == filed.id),
        )
        .await;
    on_board_b.push(heard);
    // It shows audits, and refuses writes.
    let (status, summary) = b.get_json("/api/audit/summary?from=0&to=9999999999999", &boss).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["figures"]["reports"], 1, "{summary}");
    let mut on_b = connect(&b.kiosk_ws_url(), &c2).await;
    let refused = on_b.file_refused(report("c2", "x")).await;
    assert_eq!(refused, ErrorCode::Standby);
    drop((first, on_b));

    // A board on the primary, to resume on the standby later.
    let mut board_a = connect(&a.ws_url(), &boss).await;
    board_a.subscribe(None).await;

    // Three devices report without stop; the primary is killed under them.
    let servers = [a.ws_url(), b.ws_url()];
    let acked = Arc::new(Mutex::new(Vec::new()));
    let per_kiosk = 60;
    let devices = [("k1", "c1", c1.clone()), ("k2", "c2", c2.clone()), ("k3", "c1", c1)];
    let reporters: Vec<_> = devices
        .into_iter()
        .map(|(name, compound, cookie)| {
            let acked = acked.clone();
            tokio::spawn(kiosk(name, servers.clone(), cookie, compound, per_kiosk, acked))
        })
        .collect();
    until("a third of the reports acknowledged", FAILOVER, || {
        let n = acked.lock().unwrap().len();
        async move { n >= per_kiosk }
    })
    .await;
    // What the board on the primary saw last, before it dies.
    let seen = a_board_position(&mut board_a).await;
    a.kill();
    let killed = Instant::now();
    until("the standby took over", FAILOVER, || async { role(&b).await == "primary" }).await;
    eprintln!("failover: the standby was primary {:?} after the kill", killed.elapsed());
    for reporter in reporters {
        reporter.await.unwrap();
    }

    // Every acknowledged report is on the new primary exactly once.
    let acked = acked.lock().unwrap().clone();
    let mut by_request: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let last = seq(&b).await.unwrap();
    let (newest, mut messages) = board_b
        .recv_until(|m| matches!(m, ServerMessage::Event { event, .. } if event.seq == last))
        .await;
    messages.push(newest);
    on_board_b.extend(messages);
    let events = events_of(&on_board_b);
    let seqs: Vec<Seq> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (from + 1..=last).collect::<Vec<_>>(),
        "the standby's board missed or doubled"
    );
    for event in &events {
        if let Change::Reported { request_id, .. } = &event.change {
            by_request.entry(request_id.clone()).or_default().push(event.incident.0);
        }
    }
    for (request_id, incident) in &acked {
        assert_eq!(by_request.get(request_id), Some(&vec![*incident]), "{request_id}");
    }
    assert_eq!(acked.len(), 3 * per_kiosk);

    // The primary's board resumes on the new primary: no snapshot, nothing missed or doubled.
    let mut resumed = connect(&b.ws_url(), &boss).await;
    let ServerMessage::Hello { epoch, .. } = &resumed.hello else { unreachable!() };
    let since = Position { epoch: epoch.clone(), seq: seen };
    let (answer, replayed) = resumed.subscribe(Some(since)).await;
    assert!(matches!(answer, ServerMessage::Resumed { .. }), "{answer:?}");
    let replayed: Vec<Seq> = events_of(&replayed).iter().map(|e| e.seq).collect();
    assert_eq!(replayed, (seen + 1..=last).collect::<Vec<_>>());

    // The old primary comes back as a standby: it catches up, and refuses writes.
    a.restart();
    assert_eq!(role(&a).await, "standby");
    until("the old primary caught up", FAILOVER, || async { seq(&a).await == Some(last) }).await;
    let mut on_a = connect(&a.kiosk_ws_url(), &c2).await;
    assert_eq!(on_a.file_refused(report("c2", "y")).await, ErrorCode::Standby);
}

/// The last event the board on the primary has seen (draining what it was sent).
async fn a_board_position(board: &mut WsClient) -> Seq {
    let mut seen = 0;
    while let Ok(Ok(message)) =
        tokio::time::timeout(Duration::from_millis(300), board.try_recv()).await
    {
        if let ServerMessage::Event { event, .. } = message {
            seen = event.seq;
        }
    }
    seen
}
