//! `TestServer`: the real `hongfan` binary on port 0 with a temporary data folder and known
//! accounts; `WsClient`: a protocol client with explicit waits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use futures::{SinkExt, StreamExt};
use hongfan::ManualClock;
use hongfan::{auth::Accounts, office::NewPerson};
use hongfan_shared::protocol::{ClientMessage, ErrorCode, ServerMessage};
use hongfan_shared::{CompoundId, Principal, Role};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, http};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{DEADLINE, T0, within};

/// Every test account's password.
pub const PASSWORD: &str = "test-password-1";

/// The people and devices every test server has.
pub const USERS: &[(&str, &str, Role, &[&str])] = &[
    ("boss", "胡书记", Role::Supervisor, &[]),
    ("wang", "王芳", Role::Worker, &["c1"]),
    ("li", "李强", Role::Worker, &["c1"]),
    ("zhao", "赵敏", Role::Worker, &["c2"]),
    ("head", "周楼长", Role::BuildingHead, &["c1"]),
];

/// A server running inside the test process.
#[derive(Debug)]
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Debug)]
pub struct TestServer {
    pub dir: tempfile::TempDir,
    data: PathBuf,
    pub url: String,
    /// `kiosk compound → credential`.
    pub kiosks: Vec<(String, String)>,
    child: Option<Child>,
    /// A server run inside the test process instead (on a clock the test moves).
    in_process: Option<InProcess>,
    log: PathBuf,
    extra_args: Vec<String>,
    launch: Launch,
}

/// How the server process is started: its log filter, and a command to start it through (for
/// example `taskset -c 0`, to pin it to a core for a benchmark).
#[derive(Debug, Clone)]
pub struct Launch {
    pub log: String,
    pub prefix: Vec<String>,
}

impl Default for Launch {
    fn default() -> Self {
        Launch {
            log: "debug,sled=info,hyper=info,tungstenite=info,tokio_tungstenite=info".into(),
            prefix: Vec::new(),
        }
    }
}

/// The server binary cargo built beside the test executables (`target/<profile>/`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // Test executables live in target/<profile>/deps, binaries such as the load generator in
    // target/<profile>: look one level up and beside the executable.
    let candidates: Vec<PathBuf> =
        exe.ancestors().skip(1).take(2).map(|dir| dir.join("hongfan-under-test")).collect();
    candidates.iter().rev().find(|b| b.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "{} is missing: run the tests with `cargo test --workspace`",
            candidates[1].display()
        )
    })
}

/// Runs the `hongfan` command line on `data` (a command, its arguments, then `--data-dir`);
/// answers whether it succeeded, and what it printed on stdout and then stderr.
pub fn hongfan(args: &[&str], data: &Path) -> (bool, String) {
    let output = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("NO_COLOR", "1")
        .output()
        .expect("run hongfan");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

impl TestServer {
    /// Starts a server with the test accounts and one kiosk each for c1 and c2.
    pub async fn start() -> TestServer {
        TestServer::start_with(&[]).await
    }

    pub async fn start_with(extra_args: &[&str]) -> TestServer {
        TestServer::start_launched(extra_args, Launch::default()).await
    }

    /// Starts a seeded server as `launch` says.
    pub async fn start_launched(extra_args: &[&str], launch: Launch) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let kiosks = seed_accounts(&dir.path().join("data")).await;
        let log = dir.path().join("server.log");
        let data = dir.path().join("data");
        let mut server = TestServer {
            data,
            dir,
            url: String::new(),
            kiosks,
            child: None,
            in_process: None,
            log,
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            launch,
        };
        server.spawn("127.0.0.1:0");
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// Starts a server on an existing data folder (a restored one, say), with no seeding.
    pub fn start_on(data: PathBuf, extra_args: &[&str]) -> TestServer {
        TestServer::start_on_launched(data, extra_args, Launch::default())
    }

    pub fn start_on_launched(data: PathBuf, extra_args: &[&str], launch: Launch) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("server.log");
        let mut server = TestServer {
            data,
            dir,
            url: String::new(),
            kiosks: Vec::new(),
            child: None,
            in_process: None,
            log,
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            launch,
        };
        server.spawn("127.0.0.1:0");
        server
    }

    fn spawn(&mut self, addr: &str) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        let mut command = match self.launch.prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary());
                command
            }
            None => Command::new(binary()),
        };
        let mut child = command
            .args(["--addr", addr, "--data-dir"])
            .arg(self.data_dir())
            .args(&self.extra_args)
            .env("RUST_LOG", &self.launch.log)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start hongfan");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read stdout");
        // Keep reading, so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let url = first.trim().strip_prefix("listening on ").unwrap_or_else(|| {
            panic!(
                "server did not start: {first:?}\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        self.url = url.to_owned();
        self.child = Some(child);
    }

    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr())
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let status = child.wait().expect("wait");
            assert!(status.success(), "server exited with {status}\n{}", self.log_text());
        }
    }

    /// Kills the server with SIGKILL (an in-process one is told to stop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut in_process) = self.in_process.take() {
            let _ = in_process.stop.take().map(|stop| stop.send(()));
        }
    }

    /// Starts a server inside the test process, on `clock`, with the test accounts: a test moves
    /// the clock (a shift ending, say) instead of waiting. Its log goes nowhere.
    pub async fn start_in_process(clock: std::sync::Arc<ManualClock>) -> TestServer {
        Self::start_in_process_with(clock, |_| {}).await
    }

    /// As `start_in_process`, with settings changed by `configure` (its data folder is set).
    pub async fn start_in_process_with(
        clock: std::sync::Arc<ManualClock>,
        configure: impl FnOnce(&mut hongfan::server::Settings),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let kiosks = seed_accounts(&data).await;
        let mut settings = hongfan::server::Settings::for_tests(data.clone());
        configure(&mut settings);
        let server = hongfan::server::Server::open(settings, clock).await.expect("open server");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let url = hongfan::server::base_url(listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, listening) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = server
                .run(
                    listener,
                    None,
                    async {
                        let _ = stopped.await;
                    },
                    move || {
                        let _ = ready.send(());
                    },
                )
                .await;
        });
        listening.await.expect("the server answers");
        TestServer {
            log: dir.path().join("server.log"),
            data,
            dir,
            url,
            kiosks,
            child: None,
            in_process: Some(InProcess { stop: Some(stop) }),
            extra_args: Vec::new(),
            launch: Launch::default(),
        }
    }

    /// Starts the server again on the same address and data folder.
    pub fn restart(&mut self) {
        let addr = self.addr().to_owned();
        self.spawn(&addr);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Logs in over HTTP and returns the session cookie.
    /// An upstream key (12345 or the street office, `source`) with its webhook at `url`, issued
    /// by the supervisor whose session `cookie` is: the key and the webhook's secret.
    pub async fn upstream_key(&self, cookie: &str, source: &str, url: &str) -> (String, String) {
        let issued: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/api/admin/open311/keys", self.url))
            .header("cookie", cookie)
            .json(&serde_json::json!({
                "name": format!("{source} 平台"),
                "upstream": { "source": source, "webhook": url },
            }))
            .send()
            .await
            .expect("issue a key")
            .json()
            .await
            .expect("the key's answer");
        assert_eq!(issued["key"]["upstream"].get("secret"), None, "{issued}");
        let text = |field: &str| issued[field].as_str().expect(field).to_owned();
        (text("api_key"), text("webhook_secret"))
    }

    /// A work order posted through Open311 with `key`: a broken stair light at c1's 3号楼, with
    /// the platform's number and `more` fields.
    pub async fn post_order(
        &self,
        key: &str,
        external_id: &str,
        more: &[(&str, &str)],
    ) -> hongfan_shared::IncidentId {
        let mut form = vec![
            ("api_key", key),
            ("service_code", "repair"),
            ("address_id", "c1/3号楼"),
            ("description", "市民来电：3号楼楼道灯不亮"),
            ("attribute[external_id]", external_id),
        ];
        form.extend_from_slice(more);
        let posted: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/open311/v2/requests.json", self.url))
            .form(&form)
            .send()
            .await
            .expect("post the order")
            .json()
            .await
            .expect("the order's answer");
        let id = posted[0]["service_request_id"].as_str().unwrap_or_else(|| panic!("{posted}"));
        hongfan_shared::IncidentId(id.parse().expect("a request id"))
    }

    pub async fn login(&self, login: &str) -> String {
        self.login_with(login, PASSWORD).await.expect("login")
    }

    pub async fn login_with(
        &self,
        login: &str,
        password: &str,
    ) -> Result<String, reqwest::StatusCode> {
        let body = serde_json::json!({ "login": login, "password": password });
        self.post_for_cookie("/api/login", body).await
    }

    /// Pairs the kiosk of `compound` and returns its session cookie.
    pub async fn pair_kiosk(&self, compound: &str) -> String {
        let credential = self.kiosk_credential(compound);
        self.post_for_cookie("/api/kiosk/pair", serde_json::json!({ "credential": credential }))
            .await
            .expect("pair kiosk")
    }

    pub fn kiosk_credential(&self, compound: &str) -> String {
        self.kiosks.iter().find(|(c, _)| c == compound).expect("kiosk").1.clone()
    }

    async fn post_for_cookie(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<String, reqwest::StatusCode> {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            // A connection refused at the cap is a refusal like any other.
            .map_err(|e| e.status().unwrap_or(reqwest::StatusCode::SERVICE_UNAVAILABLE))?;
        if !response.status().is_success() {
            return Err(response.status());
        }
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("hongfan_session=") || v.starts_with("hongfan_kiosk="))
            .expect("session cookie");
        Ok(cookie.split(';').next().unwrap_or_default().to_owned())
    }

    pub async fn post(&self, path: &str, cookie: &str) -> reqwest::StatusCode {
        reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .header("cookie", cookie)
            .send()
            .await
            .expect("http")
            .status()
    }

    /// GETs `path` with a session cookie.
    pub async fn get(&self, path: &str, cookie: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .header("cookie", cookie)
            .send()
            .await
            .expect("http")
    }

    /// GETs `path` with a session cookie: the status and the answer as JSON (null when the
    /// answer is not JSON).
    pub async fn get_json(&self, path: &str, cookie: &str) -> (u16, serde_json::Value) {
        let response = self.get(path, cookie).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Connects a client logged in as `login` (a user) and reads its hello.
    pub async fn user(&self, login: &str) -> WsClient {
        let cookie = self.login(login).await;
        WsClient::connect(&self.ws_url(), Some(&cookie), None).await.expect("connect")
    }

    pub async fn kiosk(&self, compound: &str) -> WsClient {
        let cookie = self.pair_kiosk(compound).await;
        WsClient::connect(&self.kiosk_ws_url(), Some(&cookie), None).await.expect("connect")
    }

    /// Kiosks speak with their own cookie, `hongfan_kiosk`.
    pub fn kiosk_ws_url(&self) -> String {
        format!("{}?as=kiosk", self.ws_url())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes the test accounts directly in the data folder, as `hongfan user add` would on a
/// stopped server.
pub async fn seed_accounts(dir: &Path) -> Vec<(String, String)> {
    let clock = ManualClock::new(T0);
    let store = crate::open_store_with(dir, &clock, Default::default()).await.expect("open store");
    let accounts = Accounts::new(store.clone(), clock.clone()).expect("accounts");
    let operator = Principal::operator();
    for (login, name, role, compounds) in USERS {
        let person = NewPerson {
            login: (*login).into(),
            name: (*name).into(),
            role: *role,
            community: None,
            compounds: compounds.iter().map(|c| CompoundId((*c).into())).collect(),
            communities: Vec::new(),
            buildings: if *role == Role::BuildingHead {
                vec!["3号楼".into()]
            } else {
                Vec::new()
            },
        };
        accounts.add_user(&operator, person, PASSWORD).await.expect("add user");
    }
    let mut kiosks = Vec::new();
    for compound in ["c1", "c2"] {
        let (_, credential) =
            accounts.add_kiosk(&operator, &CompoundId(compound.into()), "").await.expect("kiosk");
        kiosks.push((compound.to_owned(), credential));
    }
    store.close().await.expect("close");
    drop((accounts, store));
    // The server opens this folder next, in this process.
    crate::until_released(dir).await;
    kiosks
}

/// A protocol client, which keeps the incidents it hears of as a page does: a snapshot replaces
/// them, each event's `patch` is merged in.
#[derive(Debug)]
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub hello: ServerMessage,
    next_id: u64,
    incidents: std::collections::BTreeMap<u64, serde_json::Map<String, serde_json::Value>>,
}

/// How a connection attempt or a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// The handshake was refused with this HTTP status.
    Refused(u16),
    /// A close frame with this code and reason.
    Frame(u16, String),
    /// The connection ended without a close frame.
    Dropped,
}

impl WsClient {
    pub async fn connect(
        url: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<WsClient, Closed> {
        let mut request = url.into_client_request().expect("request");
        if let Some(cookie) = cookie {
            request.headers_mut().insert("cookie", cookie.parse().expect("cookie header"));
        }
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().expect("origin header"));
        }
        // Reads in small steps: tungstenite zeroes its whole read buffer (128 KiB by default)
        // before each read, which made a thousand boards' generator, not the server, the cost.
        let config =
            WebSocketConfig::default().max_message_size(Some(64 << 20)).read_buffer_size(8 << 10);
        let (ws, _) = within(
            "handshake",
            tokio_tungstenite::connect_async_with_config(request, Some(config), true),
        )
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                Closed::Refused(response.status().as_u16())
            }
            _ => Closed::Dropped,
        })?;
        let mut client = WsClient {
            ws,
            hello: ServerMessage::Roster { on_duty: vec![] },
            next_id: 1,
            incidents: Default::default(),
        };
        client.hello = client.recv().await;
        assert!(
            matches!(client.hello, ServerMessage::Hello { .. }),
            "first message is hello: {:?}",
            client.hello
        );
        Ok(client)
    }

    /// A fresh correlation id.
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub async fn send(&mut self, message: &ClientMessage) {
        let text = serde_json::to_string(message).expect("encode");
        self.send_raw(Message::Text(text.into())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        within("send", self.ws.send(message)).await.expect("send");
    }

    /// The incident as this client holds it now, from the snapshot and the patches since.
    pub fn incident(&self, id: hongfan_shared::IncidentId) -> hongfan_shared::Incident {
        let fields = self.incidents.get(&id.0).unwrap_or_else(|| panic!("no incident {}", id.0));
        serde_json::from_value(serde_json::Value::Object(fields.clone()))
            .unwrap_or_else(|e| panic!("incident {} as held does not decode: {e}", id.0))
    }

    fn keep(&mut self, message: &ServerMessage) {
        match message {
            ServerMessage::Snapshot { incidents, .. } => {
                self.incidents = incidents
                    .iter()
                    .filter_map(|i| match serde_json::to_value(i) {
                        Ok(serde_json::Value::Object(fields)) => Some((i.id.0, fields)),
                        _ => None,
                    })
                    .collect();
            }
            ServerMessage::Event { event, patch } => {
                // A field sent as null is one the incident no longer has.
                let held = self.incidents.entry(event.incident.0).or_default();
                for (key, value) in patch {
                    if value.is_null() {
                        held.remove(key);
                    } else {
                        held.insert(key.clone(), value.clone());
                    }
                }
            }
            _ => {}
        }
    }

    /// The next text message, decoded.
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            match within("a message", self.ws.next()).await {
                Some(Ok(Message::Text(text))) => {
                    let message: ServerMessage = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("bad message {text}: {e}"));
                    self.keep(&message);
                    return message;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The next message, or how the connection ended.
    pub async fn try_recv(&mut self) -> Result<ServerMessage, Closed> {
        loop {
            match within("a message", self.ws.next()).await {
                Some(Ok(Message::Text(text))) => {
                    let message: ServerMessage = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("bad message {text}: {e}"));
                    self.keep(&message);
                    return Ok(message);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Err(Closed::Frame(frame.code.into(), frame.reason.to_string()));
                }
                _ => return Err(Closed::Dropped),
            }
        }
    }

    /// Reads and drops everything until the connection ends (a board that keeps up).
    pub async fn read_forever(mut self) {
        while let Some(Ok(_)) = self.ws.next().await {}
    }

    /// The next text frame as it came, undecoded and with no deadline of its own (for the load
    /// generator's hot loop, which has its own end): `None` once the connection ends.
    pub async fn recv_text(&mut self) -> Option<tokio_tungstenite::tungstenite::Utf8Bytes> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return Some(text),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Sends a request and waits for its answer: `done`, or the error refusing it.
    pub async fn ask(&mut self, message: &ClientMessage) -> ServerMessage {
        self.send(message).await;
        let (answer, _) = self
            .recv_until(|m| matches!(m, ServerMessage::Error(_) | ServerMessage::Done { .. }))
            .await;
        answer
    }

    /// Reads until a message matches, returning it; the others are returned too, in order.
    /// The wanted one must come within the deadline, however many others keep coming.
    pub async fn recv_until(
        &mut self,
        mut wanted: impl FnMut(&ServerMessage) -> bool,
    ) -> (ServerMessage, Vec<ServerMessage>) {
        let mut before = Vec::new();
        let until = tokio::time::Instant::now() + crate::DEADLINE;
        loop {
            let Ok(message) = tokio::time::timeout_at(until, self.recv()).await else {
                panic!(
                    "the message waited for did not come within {:?}: {before:?}",
                    crate::DEADLINE
                )
            };
            if wanted(&message) {
                return (message, before);
            }
            before.push(message);
        }
    }

    /// Whether this connection was alerted of `incident` (a chime on a board). The server sends
    /// an alert right behind its event, with nothing between; so after the event, the next
    /// message says. A lookup answered after the event tells "no alert" from "not yet".
    pub async fn alerted(&mut self, incident: &hongfan_shared::Incident) -> bool {
        let reported = |m: &ServerMessage| {
            matches!(m, ServerMessage::Event { event, .. }
                if event.incident == incident.id
                    && matches!(event.change, hongfan_shared::Change::Reported { .. }))
        };
        self.recv_until(reported).await;
        let id = self.id();
        let lookup = ClientMessage::Lookup {
            id,
            ticket: String::new(),
            community: None,
            incident: Some(incident.id),
            phone_tail: None,
            key: None,
        };
        self.send(&lookup).await;
        match self.recv().await {
            ServerMessage::Alert { incident: i, .. } => i.id == incident.id,
            _ => false,
        }
    }

    /// Files a report (as a kiosk) and returns the incident it made.
    pub async fn file(&mut self, report: hongfan_shared::Report) -> hongfan_shared::Incident {
        self.file_slip(report).await.0
    }

    /// Files a report and returns the incident and the slip's private code.
    pub async fn file_slip(
        &mut self,
        report: hongfan_shared::Report,
    ) -> (hongfan_shared::Incident, String) {
        match self.send_report(report).await {
            ServerMessage::Reported { incident, key, .. } => (incident, key.expect("a slip code")),
            refused => panic!("report refused: {refused:?}"),
        }
    }

    /// Files a report that is refused; the refusal's code.
    pub async fn file_refused(&mut self, report: hongfan_shared::Report) -> ErrorCode {
        match self.send_report(report).await {
            ServerMessage::Error(e) => e.code,
            stored => panic!("report stored: {stored:?}"),
        }
    }

    /// Sends a report under a new request id; its answer, `reported` or `error`.
    async fn send_report(&mut self, report: hongfan_shared::Report) -> ServerMessage {
        // Unique across connections: a device's ids never repeat.
        let request_id = format!("r{}-{:08x}", self.id(), rand::random::<u32>());
        self.send(&ClientMessage::Report { request_id: request_id.clone(), report }).await;
        let (answer, _) = self
            .recv_until(|m| match m {
                ServerMessage::Reported { request_id: r, .. } => *r == request_id,
                ServerMessage::Error(e) => e.request_id.as_deref() == Some(request_id.as_str()),
                _ => false,
            })
            .await;
        answer
    }

    /// Subscribes and returns the snapshot or resume marker and the events before it.
    pub async fn subscribe(
        &mut self,
        since: Option<hongfan_shared::protocol::Position>,
    ) -> (ServerMessage, Vec<ServerMessage>) {
        self.send(&ClientMessage::Subscribe { since }).await;
        self.recv_until(|m| {
            matches!(m, ServerMessage::Snapshot { .. } | ServerMessage::Resumed { .. })
        })
        .await
    }

    /// Waits for the server to end the connection.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match tokio::time::timeout(DEADLINE, self.ws.next()).await {
                Err(_) => panic!("the connection stayed open"),
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    return Closed::Frame(frame.code.into(), frame.reason.to_string());
                }
                Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                    return Closed::Dropped;
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Separates sending from receiving, for open-loop senders whose answers another task reads.
    pub fn split(self) -> (WsSender, WsReceiver) {
        let (sink, stream) = self.ws.split();
        (WsSender { sink }, WsReceiver { stream })
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

pub fn cookie_request(url: &str, cookie: &str) -> http::Request<()> {
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("cookie", cookie.parse().expect("cookie"));
    request
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sending half of a split `WsClient`.
#[derive(Debug)]
pub struct WsSender {
    sink: futures::stream::SplitSink<Ws, Message>,
}

impl WsSender {
    pub async fn send(&mut self, message: &ClientMessage) {
        let text = serde_json::to_string(message).expect("encode");
        within("send", self.sink.send(Message::Text(text.into()))).await.expect("send");
    }
}

/// The receiving half of a split `WsClient`.
#[derive(Debug)]
pub struct WsReceiver {
    stream: futures::stream::SplitStream<Ws>,
}

impl WsReceiver {
    /// Reads until a message matches, with one deadline for it.
    pub async fn recv_until(
        &mut self,
        mut wanted: impl FnMut(&ServerMessage) -> bool,
    ) -> ServerMessage {
        within("a message", async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let message: ServerMessage = serde_json::from_str(&text).expect("message");
                        if wanted(&message) {
                            return message;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("the connection ended: {other:?}"),
                }
            }
        })
        .await
    }
}
