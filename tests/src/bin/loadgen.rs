//! The load generator: speaks the protocol like real kiosks and boards against the real server,
//! started as a child process (release build) with a temporary data folder — or against any
//! running server, given its URL and credentials (`--url`), so a deployment can be measured
//! where it runs.
//!
//! Each scenario is one command, for example
//! `cargo run --release -p hongfan-tests --bin loadgen -- ingest --kiosks 64`. With
//! `--server-cpus 0` the server it starts is pinned to core 0 (`taskset`); run the generator
//! itself under `taskset -c 1` for figures that repeat. A grid worker is on duty (as in a real
//! office), and the server logs at info.
//! Load is open-loop where the scenario says so: sends follow a fixed schedule, so a slow server
//! cannot hide its latency by slowing the sender. Latencies go into HDR histograms; the run ends
//! with a table, and `--json <file>` writes the numbers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_tests::nats::NatsCluster;
use hongfan_tests::report;
use hongfan_tests::server::{Launch, TestServer, WsClient};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 10, global = true)]
    secs: u64,
    /// Write the results as JSON here too.
    #[arg(long, global = true)]
    json: Option<std::path::PathBuf>,
    /// Drive this running server instead of starting one (then give credentials below).
    #[arg(long, global = true)]
    url: Option<String>,
    /// A kiosk credential (`kiosk-1.<secret>`) of the running server; repeat for more kiosks.
    #[arg(long = "kiosk", global = true)]
    kiosk_credentials: Vec<String>,
    /// A grid worker of the running server, `login:password`; repeat for more.
    #[arg(long = "worker", global = true)]
    workers: Vec<String>,
    /// A supervisor of the running server, `login:password`.
    #[arg(long, global = true)]
    supervisor: Option<String>,
    /// Pin the server this starts to these cores (`taskset -c`).
    #[arg(long, global = true)]
    server_cpus: Option<String>,
    /// Start the server as the primary of a standby pair: three NATS servers on loopback, each
    /// group appended to their log before it is acknowledged, and a standby following.
    #[arg(long, global = true)]
    standby: bool,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// K kiosks send reports as fast as acknowledgements come back.
    Ingest {
        #[arg(long, default_value_t = 64)]
        kiosks: usize,
        /// Incidents of history (five events each) written before the server starts.
        #[arg(long, default_value_t = 0)]
        history: u64,
        /// A supervisor reruns the audit summary over the whole history, in a loop, meanwhile.
        #[arg(long)]
        audit: bool,
    },
    /// B boards subscribed, R reports per second (open loop): report-sent to board-received.
    Fanout {
        #[arg(long, default_value_t = 200)]
        boards: usize,
        #[arg(long, default_value_t = 10)]
        rate: u64,
    },
    /// N authenticated idle boards: server memory per connection.
    Idle {
        #[arg(long, default_value_t = 1000)]
        boards: usize,
    },
    /// A store with many events: time to serving, and 1,000 boards reconnecting and resuming.
    Restart {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 1000)]
        boards: usize,
        /// Communities the deployment serves: the history's, and more from a generated
        /// district configuration (they join the folder at a first start, not timed).
        #[arg(long, default_value_t = 1)]
        communities: usize,
    },
    /// The machine's own floor: a raw write + fdatasync loop, and a WebSocket echo round trip.
    Floor,
    /// A primary and standby pair on three NATS servers: kill -9 of the primary while a kiosk
    /// reports, and the time until the standby acknowledges a report, N times.
    Failover {
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        #[arg(long, default_value = "15s")]
        lease_ttl: String,
    },
    /// With `--standby`: K kiosks file N reports to a pair that keeps R groups of its log;
    /// the log's size (groups, bytes) and the snapshot's, after.
    Retention {
        #[arg(long, default_value_t = 1_000_000)]
        reports: u64,
        #[arg(long, default_value_t = 16)]
        kiosks: usize,
        #[arg(long, default_value_t = 100_000)]
        retain: u64,
    },
    /// Incidents, each raced for by many workers at once: double claims and claim latency.
    Claims {
        #[arg(long, default_value_t = 1000)]
        incidents: usize,
        #[arg(long, default_value_t = 50)]
        racers: usize,
    },
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn summary(name: &str, h: &Histogram<u64>) -> serde_json::Value {
    println!(
        "{name}: n={} p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        h.len(),
        ms(h, 0.5),
        ms(h, 0.99),
        ms(h, 0.999),
        h.max() as f64 / 1000.0
    );
    serde_json::json!({ "n": h.len(), "p50_ms": ms(h, 0.5), "p99_ms": ms(h, 0.99), "p999_ms": ms(h, 0.999), "max_ms": h.max() as f64 / 1000.0 })
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// What the scenarios drive: a server this started, or one running elsewhere.
struct Target {
    url: String,
    kiosk_credentials: Vec<String>,
    workers: Vec<(String, String)>,
    supervisor: (String, String),
    /// The server this started, if it did.
    spawned: Option<TestServer>,
    /// With `--standby`: the NATS servers, and the standby following the server started
    /// (held, not read: they run as long as the target).
    _pair: Option<(NatsCluster, TestServer)>,
}

fn credentials(pair: &str) -> (String, String) {
    let (login, password) = pair.split_once(':').unwrap_or((pair, ""));
    (login.to_owned(), password.to_owned())
}

/// A server this starts: no limits worth the name (the limits guard against a broken kiosk, the
/// load generator is many kiosks at full speed), at info level, pinned if asked.
fn launch(args: &Args) -> Launch {
    Launch {
        log: "info".into(),
        prefix: args
            .server_cpus
            .as_ref()
            .map(|cpus| vec!["taskset".into(), "-c".into(), cpus.clone()])
            .unwrap_or_default(),
    }
}

impl Target {
    async fn new(args: &Args, extra: &[&str], data: Option<std::path::PathBuf>) -> Target {
        if let Some(url) = &args.url {
            return Target {
                url: url.trim_end_matches('/').to_owned(),
                kiosk_credentials: args.kiosk_credentials.clone(),
                workers: args.workers.iter().map(|w| credentials(w)).collect(),
                supervisor: credentials(args.supervisor.as_deref().unwrap_or("")),
                spawned: None,
                _pair: None,
            };
        }
        let mut flags: Vec<&str> = LIMITS_OFF.to_vec();
        flags.extend_from_slice(extra);
        let nats = match args.standby {
            true => Some(NatsCluster::start().await),
            false => None,
        };
        let urls = nats.as_ref().map(|nats| nats.urls().join(","));
        let pair_flags = |node: &'static str| match &urls {
            Some(urls) => {
                vec!["--nats".to_owned(), urls.clone(), "--node-name".into(), node.into()]
            }
            None => Vec::new(),
        };
        let primary_flags = pair_flags("a");
        flags.extend(primary_flags.iter().map(String::as_str));
        let server = match data {
            Some(data) => TestServer::start_on_launched(data, &flags, launch(args)),
            None => TestServer::start_launched(&flags, launch(args)).await,
        };
        let standby = nats.map(|nats| {
            let mut flags: Vec<&str> = LIMITS_OFF.to_vec();
            let standby_flags = pair_flags("b");
            flags.extend(standby_flags.iter().map(String::as_str));
            let data = server.dir.path().join("standby");
            (nats, TestServer::start_on_launched(data, &flags, launch(args)))
        });
        Target { _pair: standby, ..Target::spawned(server) }
    }

    fn spawned(server: TestServer) -> Target {
        let password = hongfan_tests::server::PASSWORD.to_owned();
        Target {
            url: server.url.clone(),
            kiosk_credentials: server.kiosks.iter().map(|(_, c)| c.clone()).collect(),
            workers: ["wang", "li"].map(|w| (w.to_owned(), password.clone())).to_vec(),
            supervisor: ("boss".into(), password),
            spawned: Some(server),
            _pair: None,
        }
    }

    fn ws_url(&self) -> String {
        format!("{}/ws", self.url.replacen("http", "ws", 1))
    }

    async fn cookie(&self, path: &str, body: serde_json::Value) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        let cookie = response.headers().get("set-cookie").expect("a cookie").to_str().unwrap();
        cookie.split(';').next().unwrap_or_default().to_owned()
    }

    async fn login(&self, (login, password): &(String, String)) -> String {
        self.cookie("/api/login", serde_json::json!({ "login": login, "password": password })).await
    }

    /// `n` kiosk connections, over the credentials given, in turn.
    async fn kiosks(&self, n: usize) -> Vec<WsClient> {
        assert!(!self.kiosk_credentials.is_empty(), "no kiosk credential (--kiosk)");
        let mut cookies = Vec::new();
        for credential in &self.kiosk_credentials {
            let body = serde_json::json!({ "credential": credential });
            cookies.push(self.cookie("/api/kiosk/pair", body).await);
        }
        let url = format!("{}?as=kiosk", self.ws_url());
        let mut out = Vec::new();
        for i in 0..n {
            let cookie = &cookies[i % cookies.len()];
            out.push(WsClient::connect(&url, Some(cookie), None).await.expect("kiosk"));
        }
        out
    }

    /// A worker's board, subscribed and on duty (so reports are not escalated, as in an office
    /// that keeps its promise); it must be read, or it is closed as too slow.
    async fn on_duty_board(&self) -> tokio::task::JoinHandle<()> {
        let cookie = self.login(&self.workers[0]).await;
        let mut board =
            WsClient::connect(&self.ws_url(), Some(&cookie), None).await.expect("board");
        board.subscribe(None).await;
        board.send(&ClientMessage::Duty { id: 1, on: true }).await;
        board.recv_until(|m| matches!(m, ServerMessage::DutySet { .. })).await;
        tokio::spawn(board.read_forever())
    }

    fn pid(&self) -> Option<u32> {
        self.spawned.as_ref().map(TestServer::pid)
    }
}

async fn ingest(
    args: &Args,
    kiosks_n: usize,
    history: u64,
    audit: bool,
) -> anyhow::Result<serde_json::Value> {
    let secs = args.secs;
    let scratch = tempfile::tempdir_in(target_dir())?;
    let server = if history > 0 {
        anyhow::ensure!(args.url.is_none(), "--history builds a server of its own: no --url");
        let data = scratch.path().join("data");
        let credentials = build_history(&data, history).await?;
        let mut server = TestServer::start_on_launched(data, LIMITS_OFF, launch(args));
        server.kiosks = credentials;
        Target::spawned(server)
    } else {
        Target::new(args, &[], None).await
    };
    let _board = server.on_duty_board().await;
    let clients = server.kiosks(kiosks_n).await;
    // A supervisor rerunning the summary over everything, as fast as answers come back.
    let boss = if audit { Some(server.login(&server.supervisor).await) } else { None };
    let auditing = boss.map(|cookie| {
        let (url, stop_at) = (server.url.clone(), Instant::now() + Duration::from_secs(secs));
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut h = histogram();
            while Instant::now() < stop_at {
                let sent = Instant::now();
                let answer = client
                    .get(format!("{url}/api/audit/summary?from=0&to=9999999999999"))
                    .header("cookie", &cookie)
                    .send()
                    .await;
                if answer.is_ok_and(|a| a.status().is_success()) {
                    h.record(sent.elapsed().as_micros() as u64).ok();
                }
            }
            h
        })
    });
    let stop = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ticker = {
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprint!(
                    "\r  {} reports acknowledged",
                    progress.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
        })
    };
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(k, mut client)| {
            let progress = progress.clone();
            tokio::spawn(async move {
                let mut h = histogram();
                let compound = ["c1", "c2"][k % 2];
                let mut n = 0;
                let mut refused = 0u64;
                while Instant::now() < stop {
                    let id = format!("k{k}-{n}");
                    let sent = Instant::now();
                    client
                        .send(&ClientMessage::Report {
                            request_id: id,
                            report: report(compound, "楼道灯坏了"),
                        })
                        .await;
                    let (answer, _) = client
                        .recv_until(|m| {
                            matches!(m, ServerMessage::Reported { .. } | ServerMessage::Error(_))
                        })
                        .await;
                    n += 1;
                    // Only an acknowledgement is a durable report.
                    if !matches!(answer, ServerMessage::Reported { .. }) {
                        refused += 1;
                        continue;
                    }
                    h.record(sent.elapsed().as_micros() as u64).ok();
                    progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                (h, refused)
            })
        })
        .collect();
    let mut all = histogram();
    let mut refused = 0;
    for t in tasks {
        let (h, r) = t.await.expect("kiosk task");
        all.add(h).ok();
        refused += r;
    }
    ticker.abort();
    eprintln!();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "ingest, {kiosks_n} kiosks: {rate:.0} durable reports/s ({refused} refused, not counted)"
    );
    let mut v = summary("ack latency", &all);
    v["kiosks"] = kiosks_n.into();
    v["reports_per_s"] = rate.into();
    v["history_incidents"] = history.into();
    if let Some(auditing) = auditing {
        let h = auditing.await?;
        v["audit"] = summary("audit summary over the whole history, meanwhile", &h);
    }
    Ok(v)
}

async fn retention(
    args: &Args,
    reports: u64,
    kiosks_n: usize,
    retain: u64,
) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(args.standby && args.url.is_none(), "retention needs --standby and no --url");
    let retain_flag = retain.to_string();
    let every = "5s";
    let server =
        Target::new(args, &["--nats-retain", &retain_flag, "--nats-compact-every", every], None)
            .await;
    let nats = &server._pair.as_ref().expect("the pair").0;
    let clients = server.kiosks(kiosks_n).await;
    let filed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(k, mut client)| {
            let filed = filed.clone();
            tokio::spawn(async move {
                let compound = ["c1", "c2"][k % 2];
                let mut n = 0;
                while filed.load(std::sync::atomic::Ordering::Relaxed) < reports {
                    let request_id = format!("k{k}-{n}");
                    n += 1;
                    let report = report(compound, "楼道灯坏了");
                    client.send(&ClientMessage::Report { request_id, report }).await;
                    let (answer, _) = client
                        .recv_until(|m| {
                            matches!(m, ServerMessage::Reported { .. } | ServerMessage::Error(_))
                        })
                        .await;
                    if matches!(answer, ServerMessage::Reported { .. }) {
                        let done = filed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if done.is_multiple_of(100_000) {
                            eprintln!("  {done} reports acknowledged");
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let js = async_nats::jetstream::new(nats.client().await);
    let state = |name: &'static str| {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream(name).await?;
            anyhow::Ok(stream.info().await?.state.clone())
        }
    };
    // The last round of the primary's look, after the last report.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let log = state("HONGFAN").await?;
    let snapshot = state("OBJ_hongfan_snapshot").await?;
    let folder = dir_bytes(&server.spawned.as_ref().expect("the primary").data_dir());
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!(
        "retention: {reports} reports by {kiosks_n} kiosks in {secs:.0} s, --nats-retain {retain}: the log holds {} groups ({}..={}), {:.1} MB; the snapshot {:.1} MB; the primary's folder {:.1} MB",
        log.messages,
        log.first_sequence,
        log.last_sequence,
        mb(log.bytes),
        mb(snapshot.bytes),
        mb(folder),
    );
    Ok(serde_json::json!({
        "reports": reports, "retain": retain, "groups_written": log.last_sequence,
        "groups_kept": log.messages, "log_bytes": log.bytes, "snapshot_bytes": snapshot.bytes,
        "folder_bytes": folder,
    }))
}

/// The bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

async fn fanout(args: &Args, boards_n: usize, rate: u64) -> serde_json::Value {
    let secs = args.secs;
    let server = Target::new(args, &["--send-queue", "4096"], None).await;
    let _board = server.on_duty_board().await;
    let mut cookies = Vec::new();
    for w in &server.workers {
        cookies.push(server.login(w).await);
    }
    // Each report's request id carries when it was sent (µs since `epoch`), so a board needs no
    // shared table to time it, and each board keeps its own histogram.
    let epoch = Instant::now();
    let expected = rate * secs;
    let mut board_tasks = Vec::new();
    for b in 0..boards_n {
        let mut client =
            WsClient::connect(&server.ws_url(), Some(&cookies[b % cookies.len()]), None)
                .await
                .expect("board");
        client.subscribe(None).await;
        board_tasks.push(tokio::spawn(async move {
            // All, and the run's first and last thirds: queues that grow show as a later third
            // slower than the first.
            let (mut latencies, mut first, mut last) = (histogram(), histogram(), histogram());
            let mut seen = 0;
            while seen < expected {
                // Only the request id is needed: a full decode would make the generator, not
                // the server, the bottleneck.
                let Some(text) = client.recv_text().await else {
                    panic!("a board was disconnected after {seen} of {expected} reports")
                };
                if text.starts_with("{\"type\":\"event\"") && text.contains("\"type\":\"reported\"")
                {
                    let now = epoch.elapsed().as_micros() as u64;
                    // `f{report number}-{µs when sent}`
                    let sent = text
                        .split("\"request_id\":\"f")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .and_then(|id| id.split_once('-'))
                        .and_then(|(n, micros)| {
                            Some((n.parse::<u64>().ok()?, micros.parse::<u64>().ok()?))
                        });
                    if let Some((n, sent_at)) = sent {
                        let latency = now.saturating_sub(sent_at);
                        latencies.record(latency).ok();
                        if n < expected / 3 {
                            first.record(latency).ok();
                        } else if n >= expected - expected / 3 {
                            last.record(latency).ok();
                        }
                    }
                    seen += 1;
                }
            }
            (latencies, first, last)
        }));
    }
    eprintln!("  {boards_n} boards subscribed; sending {rate} reports/s for {secs} s");
    let kiosk = server.kiosks(1).await.pop().expect("kiosk");
    let interval = Duration::from_micros(1_000_000 / rate.max(1));
    let start = Instant::now();
    // Open loop: each report leaves at its scheduled time; acknowledgements are read by another
    // task so that a slow answer never delays the next send.
    let (mut sink, reader) = kiosk.split();
    let acks = tokio::spawn(async move {
        let mut reader = reader;
        for _ in 0..expected {
            reader.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await;
        }
    });
    for n in 0..expected {
        let due = start + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let id = format!("f{n}-{}", epoch.elapsed().as_micros());
        sink.send(&ClientMessage::Report { request_id: id, report: report("c1", "fan-out") }).await;
    }
    acks.await.expect("acks");
    let (mut h, mut first, mut last) = (histogram(), histogram(), histogram());
    for t in board_tasks {
        let (all, early, late) = t.await.expect("board");
        h.add(all).ok();
        first.add(early).ok();
        last.add(late).ok();
    }
    println!("fan-out, {boards_n} boards, {rate} reports/s:");
    let mut v = summary("report sent → board received", &h);
    v["first_third"] = summary("  the run's first third", &first);
    v["last_third"] = summary("  the run's last third", &last);
    v["boards"] = boards_n.into();
    v["rate"] = rate.into();
    v
}

async fn idle(args: &Args, boards_n: usize) -> serde_json::Value {
    let server = Target::new(args, &[], None).await;
    let pid = server.pid().expect("idle measures the memory of a server this starts");
    let cookie = server.login(&server.workers[0]).await;
    // Warm up: one connection's worth of one-time allocations does not count.
    let mut warm = WsClient::connect(&server.ws_url(), Some(&cookie), None).await.expect("board");
    warm.subscribe(None).await;
    let before = rss_kib(pid);
    let mut boards = Vec::new();
    for n in 0..boards_n {
        let mut client =
            WsClient::connect(&server.ws_url(), Some(&cookie), None).await.expect("board");
        client.subscribe(None).await;
        boards.push(client);
        if n % 500 == 499 {
            eprint!("\r  {} boards connected", n + 1);
        }
    }
    eprintln!();
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / boards_n as f64;
    println!(
        "idle: {boards_n} boards, server RSS {before} KiB → {after} KiB: {:.1} KiB per connection",
        per / 1024.0
    );
    serde_json::json!({ "boards": boards_n, "rss_before_kib": before, "rss_after_kib": after, "bytes_per_connection": per })
}

async fn claims(args: &Args, incidents: usize, racers: usize) -> serde_json::Value {
    let server = Target::new(args, &[], None).await;
    let mut cookies = Vec::new();
    for who in server.workers.iter().chain([&server.supervisor]) {
        cookies.push(server.login(who).await);
    }
    let mut clients = Vec::new();
    for n in 0..racers {
        clients.push(
            WsClient::connect(&server.ws_url(), Some(&cookies[n % cookies.len()]), None)
                .await
                .expect("racer"),
        );
    }
    let mut kiosk = server.kiosks(1).await.pop().expect("kiosk");
    let mut latency = histogram();
    let mut double = 0;
    let mut ids = Vec::new();
    for n in 0..incidents {
        kiosk
            .send(&ClientMessage::Report {
                request_id: format!("c{n}"),
                report: report("c1", "claim storm"),
            })
            .await;
        if let (ServerMessage::Reported { incident, .. }, _) =
            kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await
        {
            ids.push(incident.id);
        }
    }
    for (n, id) in ids.iter().enumerate() {
        let sent = Instant::now();
        for c in &mut clients {
            c.send(&ClientMessage::Claim { id: n as u64, incident: *id }).await;
        }
        let mut wins = 0;
        for c in &mut clients {
            let (answer, _) = c
                .recv_until(|m| matches!(m, ServerMessage::Done { .. } | ServerMessage::Error(_)))
                .await;
            latency.record(sent.elapsed().as_micros() as u64).ok();
            wins += usize::from(matches!(answer, ServerMessage::Done { .. }));
        }
        if wins != 1 {
            double += 1;
        }
        if n % 100 == 99 {
            eprint!("\r  {} incidents raced", n + 1);
        }
    }
    eprintln!();
    println!(
        "claim storm: {incidents} incidents × {racers} workers: {double} incidents without exactly one winner"
    );
    let mut v = summary("claim answer latency (from the first send)", &latency);
    v["double_claims"] = double.into();
    v
}

/// Where scratch data folders go: beside the build, never in the source tree.
fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("loadgen's own path");
    exe.ancestors().nth(2).expect("the target folder").to_owned()
}

/// Report limits out of the way, and room for many connections.
const LIMITS_OFF: &[&str] = &[
    "--report-burst",
    "1000000",
    "--reports-per-minute",
    "100000000",
    "--action-burst",
    "1000000",
    "--actions-per-minute",
    "100000000",
    "--max-connections",
    "19000",
    "--sockets-per-address",
    "1000000",
    "--sockets-per-kiosk",
    "1000000",
    "--sockets-per-person",
    "1000000",
];

/// Seeds the test accounts in `data` and writes `incidents` incidents straight through the store,
/// five events each (report, claim, two notes, resolve). Returns the kiosk credentials.
async fn build_history(
    data: &std::path::Path,
    incidents: u64,
) -> anyhow::Result<Vec<(String, String)>> {
    use hongfan_shared::{Action, Principal};
    let credentials = hongfan_tests::server::seed_accounts(data).await;
    let clock = hongfan::ManualClock::new(hongfan_tests::T0);
    let store = hongfan_tests::open_store(data, &clock).await?;
    let built = Instant::now();
    let writers = 64u64;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let kiosk: Principal = hongfan_tests::kiosk("c1");
                let worker: Principal = hongfan_tests::worker("wang", "c1");
                let mut n = w;
                while n < incidents {
                    let id = store
                        .report(&kiosk, &format!("h{n}"), report("c1", "history"))
                        .await?
                        .incident
                        .id;
                    store.act(&worker, id, Action::Claim).await?;
                    store.act(&worker, id, Action::Note { text: "已联系".into() }).await?;
                    store.act(&worker, id, Action::Note { text: "已上门".into() }).await?;
                    store
                        .act(&worker, id, Action::Resolve { outcome: "已办结".into(), proof: None })
                        .await?;
                    n += writers;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let total = store.last_seq()?;
    store.close().await?;
    println!("history: {total} events in {:.1} s", built.elapsed().as_secs_f64());
    Ok(credentials)
}

/// A history of `events` events, then the server's start and a mass resume.
async fn restart(
    args: &Args,
    events: u64,
    boards_n: usize,
    communities: usize,
) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(args.url.is_none(), "restart builds a server of its own: no --url");
    let dir = tempfile::tempdir_in(target_dir())?;
    let data = dir.path().join("data");
    let credentials = build_history(&data, events / 5).await?;
    let total = events / 5 * 5;
    let mut flags: Vec<String> = LIMITS_OFF.iter().map(|f| (*f).to_owned()).collect();
    if communities > 1 {
        // The history's community is the folder's already; the rest of the district joins it.
        let config = dir.path().join("district.toml");
        std::fs::write(&config, hongfan_tests::district_toml(communities - 1))?;
        flags.extend(["--config".to_owned(), config.display().to_string()]);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let joined = Instant::now();
        let mut first = TestServer::start_on_launched(data.clone(), &flags, launch(args));
        first.stop();
        println!(
            "{communities} communities joined the folder in {:.2} s",
            joined.elapsed().as_secs_f64()
        );
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    let started = Instant::now();
    let mut server = TestServer::start_on_launched(data.clone(), &flags, launch(args));
    let serving = started.elapsed();
    server.kiosks = credentials;
    println!("start to serving with {total} events: {:.2} s", serving.as_secs_f64());

    let cookie = server.login("wang").await;
    let mut positions = Vec::new();
    for _ in 0..boards_n {
        let mut board =
            WsClient::connect(&server.ws_url(), Some(&cookie), None).await.expect("board");
        let (snapshot, _) = board.subscribe(None).await;
        let (ServerMessage::Snapshot { epoch, seq, .. }
        | ServerMessage::Resumed { epoch, seq, .. }) = snapshot
        else {
            anyhow::bail!("no snapshot");
        };
        positions.push((board, hongfan_shared::protocol::Position { epoch, seq }));
    }
    // The boards hold their position across a restart; 100 events happen while they are away.
    server.stop();
    let positions: Vec<_> = positions
        .into_iter()
        .map(|(board, p)| {
            drop(board);
            p
        })
        .collect();
    server.restart();
    // Someone is on duty, so the reports are not escalated: exactly 100 events happen.
    let mut li = server.user("li").await;
    li.subscribe(None).await;
    li.send(&ClientMessage::Duty { id: 1, on: true }).await;
    li.recv_until(|m| matches!(m, ServerMessage::Roster { on_duty } if !on_duty.is_empty())).await;
    let mut kiosk = server.kiosk("c1").await;
    for n in 0..100 {
        kiosk
            .send(&ClientMessage::Report {
                request_id: format!("away{n}"),
                report: report("c1", "while away"),
            })
            .await;
        kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await;
    }
    let resumed_at = Instant::now();
    let tasks: Vec<_> = positions
        .into_iter()
        .map(|position| {
            let (url, cookie) = (server.ws_url(), cookie.clone());
            tokio::spawn(async move {
                let mut board =
                    WsClient::connect(&url, Some(&cookie), None).await.expect("reconnect");
                // Counted by the board itself: the events it received must be exactly the ones
                // after its position, in order, and the server's `missed` must agree.
                let from = position.seq;
                let (answer, before) = board.subscribe(Some(position)).await;
                let seqs: Vec<u64> = before
                    .iter()
                    .filter_map(|m| match m {
                        ServerMessage::Event { event, .. } => Some(event.seq),
                        _ => None,
                    })
                    .collect();
                let in_order = seqs.iter().copied().eq(from + 1..=from + seqs.len() as u64);
                match answer {
                    ServerMessage::Resumed { missed, seq, .. }
                        if in_order && missed == seqs.len() as u64 && seq == from + missed =>
                    {
                        missed
                    }
                    _ => u64::MAX,
                }
            })
        })
        .collect();
    let mut wrong = 0;
    for t in tasks {
        // Each board missed the 100 reports and nothing else.
        wrong += usize::from(t.await? != 100);
    }
    let resume = resumed_at.elapsed();
    println!(
        "{boards_n} boards reconnected and resumed in {:.2} s; {wrong} did not get exactly the 100 missed events",
        resume.as_secs_f64()
    );
    Ok(
        serde_json::json!({ "events": total, "serving_s": serving.as_secs_f64(), "resume_all_s": resume.as_secs_f64(), "boards": boards_n, "wrong": wrong }),
    )
}

/// What the disk and the loopback network can do at best, measured the same way as the server.
async fn floor(secs: u64) -> anyhow::Result<serde_json::Value> {
    use std::io::Write;
    let dir = tempfile::tempdir_in(target_dir())?;
    let mut file = std::fs::File::create(dir.path().join("sync"))?;
    let mut syncs = histogram();
    let stop = Instant::now() + Duration::from_secs(secs);
    let block = [7u8; 512];
    while Instant::now() < stop {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        syncs.record(t.elapsed().as_micros() as u64).ok();
    }
    println!("disk: {:.0} write+fdatasync per second", syncs.len() as f64 / secs as f64);
    let disk = summary("write + fdatasync, appending", &syncs);
    // As the write-ahead log writes: over zeros written before, so the file does not grow.
    let room = 64usize << 20;
    let file = std::fs::File::create(dir.path().join("in-place"))?;
    std::os::unix::fs::FileExt::write_all_at(&file, &vec![0u8; room], 0)?;
    file.sync_all()?;
    let mut in_place = histogram();
    let (stop, record, mut at) = (Instant::now() + Duration::from_secs(secs), [7u8; 1300], 0);
    while Instant::now() < stop && at + record.len() <= room {
        let t = Instant::now();
        std::os::unix::fs::FileExt::write_all_at(&file, &record, at as u64)?;
        file.sync_data()?;
        in_place.record(t.elapsed().as_micros() as u64).ok();
        at += record.len();
    }
    let disk_in_place = summary("write + fdatasync in place (1,300 B over zeros)", &in_place);

    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}")).await?;
    let mut echo = histogram();
    let stop = Instant::now() + Duration::from_secs(secs);
    let payload = "x".repeat(600);
    while Instant::now() < stop {
        let t = Instant::now();
        ws.send(Message::Text(payload.clone().into())).await?;
        ws.next().await;
        echo.record(t.elapsed().as_micros() as u64).ok();
    }
    let net = summary("WebSocket echo round trip (600 bytes, loopback)", &echo);
    let fanout_200 = floor_fanout(200, 10, secs).await?;
    let fanout_1000 = floor_fanout(1000, 100, secs).await?;
    Ok(serde_json::json!({
        "fdatasync": disk, "fdatasync_in_place": disk_in_place, "ws_echo": net,
        "fanout_200x10": fanout_200, "fanout_1000x100": fanout_1000,
    }))
}

/// The machine's own floor for fan-out: the least a server can do — one 1,000-byte text frame
/// written to every socket, nothing decided, nothing stored — read by the same board tasks as
/// `fanout`, on the same cores.
async fn floor_fanout(boards: usize, rate: u64, secs: u64) -> anyhow::Result<serde_json::Value> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, _) = tokio::sync::broadcast::channel::<tokio_tungstenite::tungstenite::Utf8Bytes>(64);
    let frames = tx.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).ok();
            let mut frames = frames.subscribe();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
                let (mut sink, _) = ws.split();
                while let Ok(text) = frames.recv().await {
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let epoch = Instant::now();
    let expected = rate * secs;
    let mut readers = Vec::new();
    for _ in 0..boards {
        let config = WebSocketConfig::default().read_buffer_size(8 << 10);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
            format!("ws://{addr}"),
            Some(config),
            true,
        )
        .await?;
        readers.push(tokio::spawn(async move {
            let mut latencies = histogram();
            for _ in 0..expected {
                let Some(Ok(Message::Text(text))) = ws.next().await else { break };
                let now = epoch.elapsed().as_micros() as u64;
                if let Some(sent) = text.split(':').nth(1).and_then(|t| t.parse::<u64>().ok()) {
                    latencies.record(now.saturating_sub(sent)).ok();
                }
            }
            latencies
        }));
    }
    while tx.receiver_count() < boards {
        tokio::task::yield_now().await;
    }
    let interval = Duration::from_micros(1_000_000 / rate.max(1));
    let start = Instant::now();
    for n in 0..expected {
        tokio::time::sleep_until((start + interval * n as u32).into()).await;
        let stamp = format!("sent:{}:", epoch.elapsed().as_micros());
        tx.send(format!("{stamp}{}", "x".repeat(1000 - stamp.len())).into()).ok();
    }
    let mut h = histogram();
    for reader in readers {
        h.add(reader.await?).ok();
    }
    Ok(summary(&format!("fan-out floor, {boards} sockets × {rate}/s (sent → read)"), &h))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let result = match args.scenario {
        Scenario::Ingest { kiosks, history, audit } => {
            ingest(&args, kiosks, history, audit).await?
        }
        Scenario::Fanout { boards, rate } => fanout(&args, boards, rate).await,
        Scenario::Idle { boards } => idle(&args, boards).await,
        Scenario::Claims { incidents, racers } => claims(&args, incidents, racers).await,
        Scenario::Retention { reports, kiosks, retain } => {
            retention(&args, reports, kiosks, retain).await?
        }
        Scenario::Floor => floor(args.secs).await?,
        Scenario::Failover { rounds, ref lease_ttl } => failover(&args, rounds, lease_ttl).await?,
        Scenario::Restart { events, boards, communities } => {
            restart(&args, events, boards, communities).await?
        }
    };
    if let Some(path) = args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(())
}

/// One report from a kiosk with `cookie` to `url`, answered within a second: whether it was
/// acknowledged.
async fn report_once(url: &str, cookie: &str, request_id: &str) -> bool {
    let attempt = async {
        let mut kiosk = WsClient::connect(url, Some(cookie), None).await.ok()?;
        let request_id = request_id.to_owned();
        let message = ClientMessage::Report {
            request_id: request_id.clone(),
            report: report("c1", "楼道灯坏了"),
        };
        kiosk.send(&message).await;
        loop {
            match kiosk.try_recv().await.ok()? {
                ServerMessage::Reported { request_id: r, .. } if r == request_id => return Some(()),
                ServerMessage::Error(e) if e.request_id.as_deref() == Some(&request_id) => {
                    return None;
                }
                _ => continue,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), attempt).await.ok().flatten().is_some()
}

/// kill -9 of the primary, `rounds` times: from the kill to the first report the standby
/// acknowledges (a kiosk resending every 20 ms). The killed server comes back as the standby.
async fn failover(
    args: &Args,
    rounds: usize,
    lease_ttl: &str,
) -> anyhow::Result<serde_json::Value> {
    let nats = NatsCluster::start().await;
    let flags = |node: &str| {
        let mut flags: Vec<String> = LIMITS_OFF.iter().map(|f| (*f).to_owned()).collect();
        flags.extend(["--nats".into(), nats.urls().join(","), "--node-name".into(), node.into()]);
        flags.extend(["--lease-ttl".into(), lease_ttl.to_owned()]);
        flags
    };
    let a_flags = flags("a");
    let a = TestServer::start_launched(
        &a_flags.iter().map(String::as_str).collect::<Vec<_>>(),
        launch(args),
    )
    .await;
    let b_flags = flags("b");
    let b_flags: Vec<&str> = b_flags.iter().map(String::as_str).collect();
    let b = TestServer::start_on_launched(a.dir.path().join("standby"), &b_flags, launch(args));
    let cookie = a.pair_kiosk("c1").await;
    let mut servers = [a, b];
    let mut primary = 0;
    let mut times = Vec::new();
    let mut n = 0;
    for round in 0..rounds {
        // The pair at work: the primary acknowledges, the standby has followed.
        let url = servers[primary].kiosk_ws_url();
        n += 1;
        anyhow::ensure!(
            report_once(&url, &cookie, &format!("f-{n}")).await,
            "round {round}: the primary does not acknowledge"
        );
        servers[primary].kill();
        let killed = Instant::now();
        let standby = servers[1 - primary].kiosk_ws_url();
        n += 1;
        let request_id = format!("f-{n}");
        while !report_once(&standby, &cookie, &request_id).await {
            anyhow::ensure!(
                killed.elapsed() < Duration::from_secs(120),
                "round {round}: no failover"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = killed.elapsed();
        // How long the takeover itself took, by the new primary's log.
        let log = servers[1 - primary].log_text();
        let takeover = log.lines().rev().find(|l| l.contains("took over"));
        let takeover_ms = takeover.and_then(|l| l.split("ms=").nth(1)?.split_whitespace().next());
        eprintln!(
            "  round {round}: {:.2} s (the takeover: {} ms)",
            took.as_secs_f64(),
            takeover_ms.unwrap_or("?")
        );
        times.push(took);
        servers[primary].restart();
        primary = 1 - primary;
    }
    times.sort();
    let secs = |d: Duration| d.as_secs_f64();
    let (min, median, max) = (times[0], times[times.len() / 2], times[times.len() - 1]);
    println!(
        "failover (kill -9 of the primary to the standby's first acknowledged report), lease {lease_ttl}, {rounds} rounds: min {:.2} s, median {:.2} s, max {:.2} s",
        secs(min),
        secs(median),
        secs(max)
    );
    Ok(
        serde_json::json!({ "lease_ttl": lease_ttl, "rounds": rounds, "min_s": secs(min), "median_s": secs(median), "max_s": secs(max) }),
    )
}
