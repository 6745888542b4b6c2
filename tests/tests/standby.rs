//! A primary and a standby hongfan on a three-node NATS JetStream cluster, all on loopback: the
//! standby follows and shows, refuses writes, and takes over when the primary is killed; every
//! acknowledged report is on it exactly once, a board resumes on it without a snapshot, and the
//! old primary comes back as a standby that refuses writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hongfan_shared::protocol::close;
use hongfan_shared::protocol::{ClientMessage, ErrorCode, Position, ServerMessage};
use hongfan_shared::{Change, Event, Seq};
use hongfan_tests::nats::{Access, NatsCluster, Proxy};
use hongfan_tests::report;
use hongfan_tests::server::{Closed, Launch, PASSWORD, TestServer, WsClient, cookie_request};
use tokio_tungstenite::tungstenite::Message;

/// One test at a time: each runs three NATS servers and two hongfans, and their timing (leases,
/// elections) is what is tested, on a machine of two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Short, so that a test's failover is quick; a real pair uses the default, 15 s.
const LEASE_TTL: &str = "2s";
/// Longer than a NATS cluster takes to elect a new leader for the log (4 to 9 s in 2.9).
const LEASE_OUTLASTING_AN_ELECTION: &str = "15s";
/// How long a failover may take here: the lease, a poll, the takeover, on a busy machine.
const FAILOVER: Duration = Duration::from_secs(30);

fn args(nats: &NatsCluster, node: &str) -> Vec<String> {
    args_with(&nats.urls(), node, LEASE_TTL)
}

fn args_with(urls: &[String], node: &str, lease_ttl: &str) -> Vec<String> {
    [
        "--nats",
        &urls.join(","),
        "--node-name",
        node,
        "--lease-ttl",
        lease_ttl,
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

/// Reports acknowledged: request id, incident, when.
type Acked = Arc<Mutex<Vec<(String, u64, Instant)>>>;

/// A kiosk that files `count` reports, each sent until one of `servers` acknowledges it (the
/// same request id each time); the acknowledged request ids, with their incidents.
async fn kiosk(
    name: &'static str,
    servers: [String; 2],
    cookie: String,
    compound: &'static str,
    count: usize,
    acked: Acked,
    stop: Arc<AtomicBool>,
) {
    let mut target = 0;
    let mut socket = None;
    for n in 0..count {
        if stop.load(Ordering::SeqCst) {
            return;
        }
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
                    acked.lock().unwrap().push((request_id.clone(), incident, Instant::now()));
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
    let _alone = ONE_AT_A_TIME.lock().await;
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
    // A proxy in front sends everything to the one that answers as the primary.
    let asked = |server: &TestServer| format!("{}/healthz?role=primary", server.url);
    assert_eq!(reqwest::get(asked(&a)).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(asked(&b)).await.unwrap().status(), 503);

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
    // It shows audits, and refuses writes, logins among them (sessions are the primary's).
    assert_eq!(b.login_with("boss", PASSWORD).await, Err(reqwest::StatusCode::SERVICE_UNAVAILABLE));
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
            let stop = Arc::new(AtomicBool::new(false));
            tokio::spawn(kiosk(name, servers.clone(), cookie, compound, per_kiosk, acked, stop))
        })
        .collect();
    until("a third of the reports acknowledged", FAILOVER, || {
        let n = acked.lock().unwrap().len();
        async move { n >= per_kiosk }
    })
    .await;
    // A position the board on the primary reached before it dies.
    let seen = seq(&a).await.unwrap();
    board_a
        .recv_until(|m| matches!(m, ServerMessage::Event { event, .. } if event.seq == seen))
        .await;
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
    for (request_id, incident, _) in &acked {
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

/// A primary (with the test accounts) and a standby (from an empty folder) on `urls`.
async fn pair(a: Vec<String>, b: Vec<String>) -> (TestServer, TestServer) {
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let primary = TestServer::start_with(&a).await;
    assert_eq!(role(&primary).await, "primary");
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    let standby = TestServer::start_on(primary.dir.path().join("standby"), &b);
    assert_eq!(role(&standby).await, "standby");
    (primary, standby)
}

#[tokio::test]
async fn writes_go_on_when_a_nats_node_dies() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut nats = NatsCluster::start().await;
    let ttl = LEASE_OUTLASTING_AN_ELECTION;
    let (a, b) = pair(args_with(&nats.urls(), "a", ttl), args_with(&nats.urls(), "b", ttl)).await;
    let c1 = a.pair_kiosk("c1").await;
    let mut kiosk = connect(&a.kiosk_ws_url(), &c1).await;
    kiosk.file(report("c1", "之前")).await;

    // The node that leads the log dies: the primary's appends wait for a new leader, then go on.
    let leader = leader_of(&nats, "HONGFAN").await;
    nats.kill(leader);
    let killed = Instant::now();
    for n in 0..5 {
        kiosk.file(report("c1", &format!("之后{n}"))).await;
    }
    eprintln!(
        "log leader n{} killed: 5 reports acknowledged {:?} after",
        leader + 1,
        killed.elapsed()
    );
    assert_eq!(role(&a).await, "primary");
    assert_eq!(role(&b).await, "standby");
    let last = seq(&a).await;
    // The standby's reader may have been on the node that died: it reads again once NATS has
    // elected new leaders (its requests wait meanwhile), so allow for the election too.
    let started = Instant::now();
    while seq(&b).await != last {
        let log = b.log_text();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        // (Seen here: 3 to 60 s; the primary is not held up meanwhile.)
        let within = FAILOVER * 4;
        assert!(started.elapsed() < within, "the standby stopped following:\n{}", tail.join("\n"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("the standby followed {:?} after the last report", started.elapsed());
    if started.elapsed() > Duration::from_secs(10) {
        for line in b
            .log_text()
            .lines()
            .filter(|l| l.contains("hongfan::standby") || l.contains("async_nats: event"))
        {
            eprintln!("b: {line}");
        }
    }
}

// The proxies run on the test's runtime while the server starts (a blocking read of its
// first line): they need threads of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_cut_off_from_nats_stops_acknowledging() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = NatsCluster::start().await;
    let mut proxies = Vec::new();
    for node in 0..3 {
        proxies.push(Proxy::start(nats.port(node)).await);
    }
    let through: Vec<String> = proxies.iter().map(Proxy::url).collect();
    let (a, b) = pair(args_with(&through, "a", LEASE_TTL), args(&nats, "b")).await;
    let c1 = a.pair_kiosk("c1").await;
    let mut kiosk = connect(&a.kiosk_ws_url(), &c1).await;
    kiosk.file(report("c1", "之前")).await;

    for proxy in &proxies {
        proxy.cut();
    }
    // A report to the cut-off primary is never acknowledged: refused, or the server stops.
    let request_id = "cut-1".to_owned();
    let sent =
        ClientMessage::Report { request_id: request_id.clone(), report: report("c1", "断网") };
    kiosk.send(&sent).await;
    let answer = loop {
        match kiosk.try_recv().await {
            Ok(ServerMessage::Reported { request_id: r, .. }) if r == request_id => break Ok(()),
            Ok(ServerMessage::Error(e)) if e.request_id.as_deref() == Some("cut-1") => {
                break Err(format!("{:?}", e.code));
            }
            Ok(_) => continue,
            Err(closed) => break Err(format!("{closed:?}")),
        }
    };
    eprintln!("the cut-off primary answered: {answer:?}");
    assert!(answer.is_err(), "the cut-off primary acknowledged a report");
    until("the standby took over", FAILOVER, || async { role(&b).await == "primary" }).await;
    until("the cut-off primary stopped", FAILOVER, || async { role(&a).await != "primary" }).await;

    // Sent again to the new primary, the report is stored once.
    let mut on_b = connect(&b.kiosk_ws_url(), &c1).await;
    on_b.send(&sent).await;
    let (stored, _) = on_b
        .recv_until(|m| matches!(m, ServerMessage::Reported { request_id: r, .. } if r == "cut-1"))
        .await;
    let ServerMessage::Reported { incident, .. } = stored else { unreachable!() };
    on_b.send(&sent).await;
    let (again, _) = on_b
        .recv_until(|m| matches!(m, ServerMessage::Reported { request_id: r, .. } if r == "cut-1"))
        .await;
    let ServerMessage::Reported { incident: same, .. } = again else { unreachable!() };
    assert_eq!(same.id, incident.id);
}

/// Two kiosks (c1, c2) that never stop reporting, each to whichever of `servers` acknowledges,
/// until `stop`.
struct Reporting {
    acked: Acked,
    stop: Arc<AtomicBool>,
    kiosks: Vec<tokio::task::JoinHandle<()>>,
}

impl Reporting {
    async fn start(servers: &[TestServer; 2], primary: usize) -> Reporting {
        let on = &servers[primary];
        let (c1, c2) = (on.pair_kiosk("c1").await, on.pair_kiosk("c2").await);
        let urls = [servers[0].ws_url(), servers[1].ws_url()];
        let (acked, stop): (Acked, _) = Default::default();
        let kiosks = [("k1", "c1", c1), ("k2", "c2", c2)]
            .into_iter()
            .map(|(name, compound, cookie)| {
                let (acked, stop) = (acked.clone(), Arc::clone(&stop));
                tokio::spawn(kiosk(name, urls.clone(), cookie, compound, usize::MAX, acked, stop))
            })
            .collect();
        Reporting { acked, stop, kiosks }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` reports more are acknowledged; when the first of them was.
    async fn more(&self, what: &str, more: usize, within: Duration) -> Instant {
        let before = self.count();
        until(what, within, || {
            let n = self.count();
            async move { n >= before + more }
        })
        .await;
        self.acked.lock().unwrap()[before].2
    }

    /// Stops the kiosks; every report acknowledged, in order.
    async fn stop(self) -> Vec<(String, u64, Instant)> {
        self.stop.store(true, Ordering::SeqCst);
        for kiosk in self.kiosks {
            kiosk.await.unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

/// The whole log, read from `primary`: every acknowledged report once, nothing else twice, no
/// gap. Reports stored, and events.
async fn every_acknowledged_report_once(
    primary: &TestServer,
    acked: &[(String, u64, Instant)],
) -> (usize, u64) {
    let boss = primary.login("boss").await;
    let mut board = connect(&primary.ws_url(), &boss).await;
    let ServerMessage::Hello { epoch, .. } = &board.hello else { unreachable!() };
    let since = Position { epoch: epoch.clone(), seq: 0 };
    let (answer, replayed) = board.subscribe(Some(since)).await;
    assert!(matches!(answer, ServerMessage::Resumed { .. }), "{answer:?}");
    let events = events_of(&replayed);
    let last = seq(primary).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=last).collect::<Vec<_>>());
    let mut by_request: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for event in &events {
        if let Change::Reported { request_id, .. } = &event.change {
            by_request.entry(request_id.clone()).or_default().push(event.incident.0);
        }
    }
    for (request_id, incident, _) in acked {
        assert_eq!(by_request.get(request_id), Some(&vec![*incident]), "{request_id}");
    }
    assert!(by_request.values().all(|ids| ids.len() == 1), "a report stored twice");
    (by_request.len(), last)
}

/// min, median and max.
fn spread(mut times: Vec<Duration>) -> String {
    times.sort();
    let at = |i: usize| times.get(i).copied().unwrap_or_default();
    format!("min {:?} median {:?} max {:?}", at(0), at(times.len() / 2), at(times.len().max(1) - 1))
}

/// kill -9 of whichever server is primary, `HONGFAN_FAILOVER_ROUNDS` times (CI: 100), under two
/// kiosks that never stop reporting, with the lease a real pair has (15 s); the killed one comes
/// back as the standby each time. Prints how long each takeover took, from the kill to the
/// first report the other acknowledged. At the end every acknowledged report is on the primary
/// exactly once, and its log has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_soak_of_the_primary() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let rounds: usize =
        std::env::var("HONGFAN_FAILOVER_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let nats = NatsCluster::start().await;
    let ttl = LEASE_OUTLASTING_AN_ELECTION;
    let (a, b) = pair(args_with(&nats.urls(), "a", ttl), args_with(&nats.urls(), "b", ttl)).await;
    let mut servers = [a, b];
    let reporting = Reporting::start(&servers, 0).await;
    let (mut promoted, mut acknowledged) = (Vec::new(), Vec::new());
    let mut primary = 0;
    for round in 0..rounds {
        reporting.more("reports go on", 3, FAILOVER).await;
        servers[primary].kill();
        let killed = Instant::now();
        let standby = 1 - primary;
        until("the standby took over", FAILOVER, || async {
            role(&servers[standby]).await == "primary"
        })
        .await;
        promoted.push(killed.elapsed());
        let first = reporting.more("a report acknowledged by the new primary", 1, FAILOVER).await;
        acknowledged.push(first.saturating_duration_since(killed));
        servers[primary].restart();
        let back = role(&servers[primary]).await;
        assert_eq!(back, "standby", "round {round}: the old primary came back as {back}");
        primary = standby;
    }
    let acked = reporting.stop().await;
    let (stored, last) = every_acknowledged_report_once(&servers[primary], &acked).await;
    eprintln!(
        "soak: {rounds} failovers, {} reports acknowledged, {stored} stored, {last} events; kill to the first report acknowledged by the other: {}; kill to the other answering as primary: {}",
        acked.len(),
        spread(acknowledged.clone()),
        spread(promoted),
    );
    // Each takeover was of a lease seen unrenewed for a few beats, never one left to expire
    // (the lease's 15 s): the times above are printed, not asserted.
    let watched = "the primary stopped renewing its lease: taking it over";
    let logs = servers.iter().map(TestServer::log_text).collect::<Vec<_>>().concat();
    assert_eq!(logs.matches(watched).count(), rounds, "{logs}");
}

/// Which node (0, 1 or 2) leads `stream` now.
async fn leader_of(nats: &NatsCluster, stream: &str) -> usize {
    let js = async_nats::jetstream::new(nats.client().await);
    let mut found = js.get_stream(stream).await.unwrap();
    let leader = found.info().await.unwrap().cluster.clone().and_then(|c| c.leader).unwrap();
    (0..3).find(|i| leader == format!("n{}", i + 1)).unwrap()
}

/// kill -9 of the NATS node leading the lease's bucket, then of the one leading the log, in
/// turn, `HONGFAN_LEADER_KILLS` times (CI: 20), each brought back before the next, while two
/// kiosks report: every election is waited out, and none costs the primary its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_elections_never_cost_the_primary_its_lease() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let kills: usize =
        std::env::var("HONGFAN_LEADER_KILLS").ok().and_then(|r| r.parse().ok()).unwrap_or(4);
    let mut nats = NatsCluster::start().await;
    let ttl = LEASE_OUTLASTING_AN_ELECTION;
    let (a, b) = pair(args_with(&nats.urls(), "a", ttl), args_with(&nats.urls(), "b", ttl)).await;
    let servers = [a, b];
    let reporting = Reporting::start(&servers, 0).await;
    let mut waits = Vec::new();
    for round in 0..kills {
        let stream = if round % 2 == 0 { "KV_hongfan_lease" } else { "HONGFAN" };
        let leader = leader_of(&nats, stream).await;
        reporting.more("reports go on", 3, FAILOVER).await;
        nats.kill(leader);
        let killed = Instant::now();
        reporting.more("reports go on after the election", 3, FAILOVER * 2).await;
        waits.push(killed.elapsed());
        nats.restart(leader).await;
        // One failure at a time: the node is back and current before the next is killed.
        nats.caught_up(&["HONGFAN", "KV_hongfan_lease"]).await;
        for (server, expected) in servers.iter().zip(["primary", "standby"]) {
            let now = role(server).await;
            if now != expected {
                // Both servers' say of the lease and the log, without NATS's chatter and the
                // reports, a backtrace's frames left out, so the cause shows.
                let said = |server: &TestServer| {
                    let log = server.log_text();
                    let frame = |l: &&str| {
                        let l = l.trim_start();
                        l.starts_with("at ")
                            || l.split(':').next().is_some_and(|n| n.parse::<u32>().is_ok())
                    };
                    let noise = |l: &&str| l.contains("async_nats") || l.contains("report stored");
                    let lines: Vec<&str> = log.lines().filter(|l| !frame(l) && !noise(l)).collect();
                    lines[lines.len().saturating_sub(40)..].join("\n")
                };
                panic!(
                    "round {round} ({stream}): {now}, not {expected}\n--- a:\n{}\n--- b:\n{}",
                    said(&servers[0]),
                    said(&servers[1])
                );
            }
        }
    }
    let acked = reporting.stop().await;
    let (stored, _) = every_acknowledged_report_once(&servers[0], &acked).await;
    let lost_answers = servers[0].log_text().matches("an append whose answer was lost").count();
    eprintln!(
        "{kills} NATS leader kills: 0 failovers, {stored} reports stored, {lost_answers} appends whose answer was lost found stored; kill to 3 more reports acknowledged: {}",
        spread(waits)
    );
}

/// An office that ran on one server turns on the standby: its history (an attachment among it)
/// goes into the empty log first, and a standby started from nothing has all of it.
#[tokio::test]
async fn an_existing_folder_brings_its_history_into_an_empty_log() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut alone = TestServer::start().await;
    let c1 = alone.pair_kiosk("c1").await;
    let mut kiosk = connect(&alone.kiosk_ws_url(), &c1).await;
    let first = kiosk.file(report("c1", "楼道灯坏了")).await;
    // A voice note (WebM) the second report names: a file of the history.
    let voice = [&[0x1A, 0x45, 0xDF, 0xA3][..], "一位老人的语音".as_bytes()].concat();
    let uploaded = reqwest::Client::new()
        .post(format!("{}/api/attachments", alone.url))
        .header("cookie", &c1)
        .body(voice.clone())
        .send()
        .await
        .unwrap();
    assert!(uploaded.status().is_success(), "{uploaded:?}");
    let attachment: hongfan_shared::Attachment = uploaded.json().await.unwrap();
    let with_voice = hongfan_shared::Report {
        attachments: vec![attachment.clone()],
        ..report("c1", "水管漏水")
    };
    let second = kiosk.file(with_voice).await;
    drop(kiosk);
    alone.stop();
    let last = second.last_seq;

    let nats = NatsCluster::start().await;
    let a_args = args(&nats, "a");
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let a = TestServer::start_on(alone.data_dir(), &a_args);
    assert_eq!(role(&a).await, "primary");
    let b_args = args(&nats, "b");
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let b = TestServer::start_on(alone.dir.path().join("standby"), &b_args);
    until("the standby has the history", FAILOVER, || async { seq(&b).await == Some(last) }).await;

    // The kiosk's session and both reports are on the standby, as they were.
    let boss = a.login("boss").await;
    let mut board = connect(&b.ws_url(), &boss).await;
    let (snapshot, _) = board.subscribe(None).await;
    let ServerMessage::Snapshot { incidents, .. } = snapshot else { panic!("{snapshot:?}") };
    let ids: Vec<_> = incidents.iter().map(|i| i.id).collect();
    assert_eq!(ids, [first.id, second.id]);
    // The voice note came with them.
    let path = format!("/api/incidents/{}/attachments/{}", second.id.0, attachment.id);
    let heard = b.get(&path, &boss).await;
    assert_eq!(heard.status(), 200);
    assert_eq!(heard.bytes().await.unwrap().to_vec(), voice);
    let mut on_b = connect(&b.kiosk_ws_url(), &c1).await;
    assert_eq!(on_b.file_refused(report("c1", "x")).await, ErrorCode::Standby);
    // And the primary goes on writing after them.
    let mut on_a = connect(&a.kiosk_ws_url(), &c1).await;
    let third = on_a.file(report("c1", "电梯停了")).await;
    assert!(third.last_seq > last);
    until("the standby follows on", FAILOVER, || async { seq(&b).await == Some(third.last_seq) })
        .await;
}

/// NATS servers that ask for an account: the pair logs in with the password from its
/// environment, and never writes it in its log.
#[tokio::test]
async fn the_pair_logs_in_to_nats_with_a_password_it_never_logs() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let password = "a-long-random-nats-password";
    let access = Access { password: Some(password), ..Access::default() };
    let nats = NatsCluster::start_with(access).await;
    let launch = || Launch {
        prefix: vec!["env".into(), format!("HONGFAN_NATS_PASSWORD={password}")],
        ..Launch::default()
    };
    let logged_in = |node| {
        let mut args = args(&nats, node);
        args.extend(["--nats-user".to_owned(), "hongfan".to_owned()]);
        args
    };
    let (a_args, b_args) = (logged_in("a"), logged_in("b"));
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let a = TestServer::start_launched(&a_args, launch()).await;
    assert_eq!(role(&a).await, "primary");
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let b = TestServer::start_on_launched(a.dir.path().join("standby"), &b_args, launch());
    assert_eq!(role(&b).await, "standby");
    let c1 = a.pair_kiosk("c1").await;
    let mut kiosk = connect(&a.kiosk_ws_url(), &c1).await;
    let filed = kiosk.file(report("c1", "楼道灯坏了")).await;
    until("the standby follows", FAILOVER, || async { seq(&b).await == Some(filed.last_seq) })
        .await;
    assert!(!a.log_text().contains(password) && !b.log_text().contains(password));
    // Configured as docs/operations.md says (a bcrypt hash), NATS has nothing to warn of.
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md"));
    let documented = guide.unwrap().lines().any(|l| l.contains("password: \"$2a$11$"));
    assert!(documented, "the guide's NATS account keeps its password as a bcrypt hash");
    for node in 0..3 {
        assert!(!nats.log(node).contains("Plaintext passwords"), "{}", nats.log(node));
    }

    // A session ended on the primary (a logout) closes its sockets on the standby too.
    let boss = a.login("boss").await;
    let mut board_b = connect(&b.ws_url(), &boss).await;
    board_b.subscribe(None).await;
    assert!(a.post("/api/logout", &boss).await.is_success());
    let closed = board_b.closed().await;
    assert!(matches!(closed, Closed::Frame(code, _) if code == close::REVOKED), "{closed:?}");
}

/// A lease bucket made by an older hongfan, read from any of its copies (`allow_direct`, which
/// may answer an old revision), is changed to be read from its leader when a server starts on
/// it.
#[tokio::test]
async fn a_lease_bucket_made_by_an_older_hongfan_is_read_from_its_leader() {
    use async_nats::jetstream::stream;
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = NatsCluster::start().await;
    let js = async_nats::jetstream::new(nats.client().await);
    let old = stream::Config {
        name: "KV_hongfan_lease".into(),
        subjects: vec!["$KV.hongfan_lease.>".into()],
        max_messages_per_subject: 1,
        max_age: Duration::from_secs(2),
        num_replicas: 3,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let started = Instant::now();
    while let Err(e) = js.create_stream(old.clone()).await {
        assert!(started.elapsed() < FAILOVER, "the old bucket: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = args(&nats, "a");
    let a = TestServer::start_with(&a.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(role(&a).await, "primary");
    let mut bucket = js.get_stream("KV_hongfan_lease").await.unwrap();
    assert!(!bucket.info().await.unwrap().config.allow_direct);
}

/// Sends `signal` (`STOP`, `CONT`) to a server's process.
fn signal(server: &TestServer, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal}");
}

/// A primary frozen (SIGSTOP) while a report waits in its socket: the standby takes the lease
/// after its watch, and the old primary, woken after the takeover, acknowledges nothing (its
/// lease and its appends are fenced) and stops. Sent again to the new primary, the report is
/// stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_primary_woken_after_a_takeover_acknowledges_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = NatsCluster::start().await;
    let ttl = LEASE_OUTLASTING_AN_ELECTION;
    let (a, b) = pair(args_with(&nats.urls(), "a", ttl), args_with(&nats.urls(), "b", ttl)).await;
    let c1 = a.pair_kiosk("c1").await;
    let mut kiosk = connect(&a.kiosk_ws_url(), &c1).await;
    kiosk.file(report("c1", "之前")).await;

    signal(&a, "STOP");
    let frozen = Instant::now();
    let sent =
        ClientMessage::Report { request_id: "frozen-1".into(), report: report("c1", "冻结时") };
    kiosk.send(&sent).await;
    until("the standby took over", FAILOVER, || async { role(&b).await == "primary" }).await;
    eprintln!("a frozen primary: the standby took over {:?} after the freeze", frozen.elapsed());
    let mut on_b = connect(&b.kiosk_ws_url(), &c1).await;
    on_b.file(report("c1", "接管后")).await;

    signal(&a, "CONT");
    let answer = loop {
        match kiosk.try_recv().await {
            Ok(ServerMessage::Reported { request_id, .. }) if request_id == "frozen-1" => {
                break Ok(());
            }
            Ok(ServerMessage::Error(e)) if e.request_id.as_deref() == Some("frozen-1") => {
                break Err(format!("{:?}", e.code));
            }
            Ok(_) => continue,
            Err(closed) => break Err(format!("{closed:?}")),
        }
    };
    eprintln!("the woken primary answered: {answer:?}");
    assert!(answer.is_err(), "a primary woken after the takeover acknowledged a report");
    until("the woken primary stopped", FAILOVER, || async { role(&a).await != "primary" }).await;
    assert!(a.log_text().contains("lost the lease"), "{}", a.log_text());

    let mut incidents = Vec::new();
    for _ in 0..2 {
        on_b.send(&sent).await;
        let (stored, _) = on_b
            .recv_until(
                |m| matches!(m, ServerMessage::Reported { request_id: r, .. } if r == "frozen-1"),
            )
            .await;
        let ServerMessage::Reported { incident, .. } = stored else { unreachable!() };
        incidents.push(incident.id);
    }
    assert_eq!(incidents[0], incidents[1], "stored once");
}

/// NATS servers that take clients only over TLS, with certificates of an authority made here:
/// the pair connects given the authority (`--nats-ca`), takes writes and follows.
#[tokio::test]
async fn the_pair_speaks_tls_to_nats_given_the_authority() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = NatsCluster::start_with(Access { tls: true, ..Access::default() }).await;
    let ca = nats.ca().expect("an authority").display().to_string();
    let with_ca = |node| {
        let mut args = args(&nats, node);
        args.extend(["--nats-ca".to_owned(), ca.clone()]);
        args
    };
    let (a, b) = pair(with_ca("a"), with_ca("b")).await;
    let c1 = a.pair_kiosk("c1").await;
    let mut kiosk = connect(&a.kiosk_ws_url(), &c1).await;
    let filed = kiosk.file(report("c1", "楼道灯坏了")).await;
    until("the standby follows", FAILOVER, || async { seq(&b).await == Some(filed.last_seq) })
        .await;
}

/// Webhooks across a takeover: an urgent report's delivery, acknowledged while its receiver was
/// down, is in the outbox, which travels in the log; the primary is killed, and the new primary
/// delivers it once the receiver is up (at least once, as operations.md says).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_the_old_primary_could_not_send_is_sent_by_the_new_one() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = NatsCluster::start().await;
    // The receiver's port, free now; nothing listens there until after the takeover.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("webhooks.toml");
    let hook = format!(
        "[[webhook]]\nname = \"office\"\nurl = \"http://127.0.0.1:{port}/hook\"\nformat = \"signed\"\nsecret = \"s\"\nkinds = [\"urgent_report\"]\n"
    );
    std::fs::write(&config, hook).unwrap();
    let with_hook = |node| {
        let mut args = args_with(&nats.urls(), node, LEASE_OUTLASTING_AN_ELECTION);
        args.extend(["--webhooks".to_owned(), config.display().to_string()]);
        args
    };
    let (mut a, b) = pair(with_hook("a"), with_hook("b")).await;
    let c1 = a.pair_kiosk("c1").await;
    let mut kiosk = connect(&a.kiosk_ws_url(), &c1).await;
    let urgent = hongfan_shared::Report {
        urgency: hongfan_shared::Urgency::Urgent,
        ..report("c1", "电梯困人")
    };
    let filed = kiosk.file(urgent).await;
    until("the standby has it", FAILOVER, || async { seq(&b).await == Some(filed.last_seq) }).await;
    a.kill();
    until("the standby took over", FAILOVER, || async { role(&b).await == "primary" }).await;

    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let keep = got.clone();
    let receiver = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let keep = keep.clone();
        async move {
            let body = serde_json::from_slice(&body).unwrap_or_default();
            keep.lock().unwrap().push(body);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.ok() });
    let sent = |got: &Arc<Mutex<Vec<serde_json::Value>>>| {
        got.lock().unwrap().iter().any(|b| b["ticket"] == filed.ticket.as_str())
    };
    until("the new primary delivered it", FAILOVER * 2, || {
        let delivered = sent(&got);
        async move { delivered }
    })
    .await;
}

/// A first server that stopped part-way through putting its folder's history into the empty log
/// (left here as it would be: the history's first group in the log, no takeover mark) is told so
/// at its next start, and starts nothing.
#[tokio::test]
async fn a_history_put_in_only_in_part_is_named_at_the_next_start() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut alone = TestServer::start().await;
    let c1 = alone.pair_kiosk("c1").await;
    let mut kiosk = connect(&alone.kiosk_ws_url(), &c1).await;
    kiosk.file(report("c1", "楼道灯坏了")).await;
    let ServerMessage::Hello { epoch, .. } = kiosk.hello.clone() else { unreachable!() };
    drop(kiosk);
    alone.stop();

    let nats = NatsCluster::start().await;
    let js = async_nats::jetstream::new(nats.client().await);
    let log = async_nats::jetstream::stream::Config {
        name: "HONGFAN".into(),
        subjects: vec!["hongfan.log.>".into()],
        num_replicas: 3,
        ..Default::default()
    };
    let started = Instant::now();
    while let Err(e) = js.get_or_create_stream(log.clone()).await {
        assert!(started.elapsed() < FAILOVER, "the stream: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Hongfan-Epoch", epoch.as_str());
    let first = js
        .publish_with_headers("hongfan.log.group", headers, r#"{"events":[]}"#.into())
        .await
        .unwrap();
    first.await.unwrap();

    let args = args(&nats, "a");
    let data = alone.data_dir();
    let run = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        hongfan_tests::server::hongfan(&args, &data)
    });
    let (ok, out) = hongfan_tests::within("the server's start", run).await.unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("only part of it is there"), "{out}");
}

/// The stream's first and last sequence, read from NATS.
async fn log_bounds(nats: &NatsCluster) -> (u64, u64) {
    let js = async_nats::jetstream::new(nats.client().await);
    let mut stream = js.get_stream("HONGFAN").await.expect("the log");
    let info = stream.info().await.expect("the log's state");
    (info.state.first_sequence, info.state.last_sequence)
}

/// A primary that keeps only a few groups cuts the log short behind a snapshot while kiosks
/// report; a standby that starts from nothing then has the snapshot and the rest, follows,
/// and takes over with every acknowledged report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_cut_short_behind_a_snapshot_and_a_standby_from_nothing_starts_from_it() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = NatsCluster::start().await;
    let retain = |node| {
        let mut args = args(&nats, node);
        args.extend(["--nats-retain", "20", "--nats-compact-every", "300ms"].map(String::from));
        args
    };
    let (a, b) = pair(retain("a"), retain("b")).await;
    let mut servers = [a, b];
    let reporting = Reporting::start(&servers, 0).await;
    // Cut short while the standby follows: never past what it has read.
    until("the log cut short", FAILOVER, || async { log_bounds(&nats).await.0 > 60 }).await;
    reporting.more("reports after the cut", 20, FAILOVER).await;
    let (first, last) = log_bounds(&nats).await;
    assert!(last - first < 200, "the log holds {first}..={last}");
    // The standby was never left behind the cut.
    assert_eq!(role(&servers[1]).await, "standby");

    // The standby starts again from nothing (at the same address, for the kiosks): seeded from
    // the snapshot, then the rest of the log.
    servers[1].kill();
    let standby = servers[1].data_dir();
    std::fs::remove_dir_all(&standby).unwrap();
    servers[1].restart();
    assert_eq!(role(&servers[1]).await, "standby");
    let log = servers[1].log_text();
    assert!(log.contains("seeded from the snapshot"), "{log}");
    reporting.more("reports with the new standby", 20, FAILOVER).await;
    until("the new standby caught up", FAILOVER, || async {
        seq(&servers[1]).await >= seq(&servers[0]).await.map(|s| s - 5)
    })
    .await;
    servers[0].kill();
    until("the new standby took over", FAILOVER, || async { role(&servers[1]).await == "primary" })
        .await;
    reporting.more("reports on the new primary", 20, FAILOVER).await;
    let acked = reporting.stop().await;
    let (reports, _) = every_acknowledged_report_once(&servers[1], &acked).await;
    assert!(reports >= acked.len());
}

/// A log made by an older hongfan forbade purging, and NATS never lifts that: the pair works on
/// it as before, keeps every group, and says so.
#[tokio::test]
async fn a_log_made_by_an_older_hongfan_is_kept_whole_and_says_why() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = NatsCluster::start().await;
    let js = async_nats::jetstream::new(nats.client().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "HONGFAN".into(),
        subjects: vec!["hongfan.log.>".into()],
        num_replicas: 3,
        duplicate_window: Duration::from_secs(120),
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    })
    .await
    .expect("the older log");
    let retain = |node| {
        let mut args = args(&nats, node);
        args.extend(["--nats-retain", "5", "--nats-compact-every", "200ms"].map(String::from));
        args
    };
    let (a, b) = pair(retain("a"), retain("b")).await;
    let servers = [a, b];
    let reporting = Reporting::start(&servers, 0).await;
    reporting.more("reports", 40, FAILOVER).await;
    let log = servers[0].log_text();
    assert!(log.contains("cannot be cut short"), "{log}");
    // Several rounds of the primary's look have passed meanwhile.
    let (first, last) = log_bounds(&nats).await;
    assert_eq!(first, 1, "the log holds {first}..={last}");
    let acked = reporting.stop().await;
    every_acknowledged_report_once(&servers[0], &acked).await;
}
