//! The attacks of the hostile-use review — a flood of connections with a kiosk's cookie, slow
//! bodies, password guessing, a flood of notes — each run while a legitimate kiosk keeps
//! reporting and a worker's board keeps receiving: every legitimate report is acknowledged and
//! pushed. The latencies are printed beside those without an attack (not asserted: timing is for
//! the benchmarks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_tests::report;
use hongfan_tests::server::{TestServer, WsClient};
use tokio::io::AsyncWriteExt;

/// Reports `n` times from the kiosk; each must be acknowledged and reach the board. Returns the
/// times from sending to the board having it.
async fn legitimate(
    kiosk: &mut WsClient,
    board: &mut WsClient,
    tag: &str,
    n: usize,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for i in 0..n {
        let request = format!("{tag}-{i}");
        let sent = Instant::now();
        kiosk
            .send(&ClientMessage::Report {
                request_id: request.clone(),
                report: report("c1", &request),
            })
            .await;
        let (answer, _) = kiosk
            .recv_until(|m| matches!(m, ServerMessage::Reported { .. } | ServerMessage::Error(_)))
            .await;
        let ServerMessage::Reported { incident, .. } = answer else {
            panic!("{tag}: a legitimate report was refused: {answer:?}")
        };
        board
            .recv_until(|m| matches!(m, ServerMessage::Event { event, .. } if event.incident == incident.id))
            .await;
        latencies.push(sent.elapsed());
    }
    latencies
}

fn describe(name: &str, mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    format!("{name}: report → board p50 {:?}, p99 {:?}, max {:?}", at(0.5), at(0.99), at(1.0))
}

/// Four attackers running `attack` until told to stop.
struct Attack {
    stop: tokio::sync::watch::Sender<bool>,
    attackers: Vec<tokio::task::JoinHandle<()>>,
}

impl Attack {
    fn start<F, Fut>(attack: F) -> Attack
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let attackers = (0..4)
            .map(|_| {
                let (mut stopped, round) = (stopped.clone(), attack());
                tokio::spawn(async move {
                    tokio::select! {
                        () = round => {}
                        _ = stopped.wait_for(|s| *s) => {}
                    }
                })
            })
            .collect();
        Attack { stop, attackers }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for attacker in self.attackers {
            let _ = attacker.await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_reports_get_through_every_attack() {
    let server = TestServer::start_with(&[
        "--report-burst",
        "10000",
        "--max-connections",
        "200",
        "--body-timeout",
        "2s",
        // The attacks come from elsewhere than the office (as behind the recommended proxy).
        "--trusted-proxy",
        "127.0.0.1",
    ])
    .await;
    let mut board = server.user("wang").await;
    board.subscribe(None).await;
    board.send(&ClientMessage::Duty { id: 1, on: true }).await;
    let kiosk_cookie = server.pair_kiosk("c1").await;
    let mut kiosk =
        WsClient::connect(&server.kiosk_ws_url(), Some(&kiosk_cookie), None).await.unwrap();
    let mut lines =
        vec![describe("no attack", legitimate(&mut kiosk, &mut board, "calm", 40).await)];

    // 1. The kiosk's cookie, stolen from the public device, opening sockets without end.
    let (url, cookie) = (server.kiosk_ws_url(), kiosk_cookie.clone());
    let attack = Attack::start(move || {
        let (url, cookie) = (url.clone(), cookie.clone());
        async move {
            let mut held = Vec::new();
            loop {
                if let Ok(socket) = WsClient::connect(&url, Some(&cookie), None).await {
                    held.push(socket);
                }
            }
        }
    });
    lines.push(describe("socket flood", legitimate(&mut kiosk, &mut board, "flood", 40).await));
    attack.stop().await;

    // 2. Bodies that trickle a byte at a time.
    let addr = server.addr().to_owned();
    let attack = Attack::start(move || {
        let addr = addr.clone();
        async move {
            loop {
                let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else { continue };
                let head = format!(
                    "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
                for _ in 0..1000 {
                    if stream.write_all(b" ").await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    lines.push(describe("slow bodies", legitimate(&mut kiosk, &mut board, "slow", 40).await));
    attack.stop().await;

    // 5. Password guessing as fast as answers come.
    let base = server.url.clone();
    let attack = Attack::start(move || {
        let base = base.clone();
        async move {
            let client = reqwest::Client::new();
            loop {
                let body = serde_json::json!({ "login": "boss", "password": "guess-guess" });
                let guess = client.post(format!("{base}/api/login")).json(&body);
                let _ = guess.header("x-forwarded-for", "203.0.113.9").send().await;
            }
        }
    });
    lines
        .push(describe("password guessing", legitimate(&mut kiosk, &mut board, "guess", 40).await));
    attack.stop().await;

    // 7. A worker's script flooding an incident with notes, to every board.
    let flooder = server.user("li").await;
    let mut victim_kiosk = server.kiosk("c1").await;
    victim_kiosk
        .send(&ClientMessage::Report { request_id: "victim".into(), report: report("c1", "x") })
        .await;
    let (answer, _) =
        victim_kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await;
    let ServerMessage::Reported { incident, .. } = answer else { unreachable!() };
    let flooder = Arc::new(tokio::sync::Mutex::new(flooder));
    let attack = Attack::start(move || {
        let flooder = flooder.clone();
        async move {
            let mut flooder = flooder.lock().await;
            for n in 0.. {
                let note =
                    ClientMessage::Note { id: n, incident: incident.id, text: "长".repeat(500) };
                flooder.send(&note).await;
                flooder
                    .recv_until(|m| {
                        matches!(m, ServerMessage::Done { .. } | ServerMessage::Error(_))
                    })
                    .await;
            }
        }
    });
    lines.push(describe("note flood", legitimate(&mut kiosk, &mut board, "notes", 40).await));
    attack.stop().await;

    eprintln!("{}", lines.join("\n"));
}
