//! `NatsCluster`: three `nats-server` processes with JetStream, clustered on loopback, each with
//! its own store folder, as the standby's tests need them. Nodes can be killed and restarted.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::within;

/// How long a fresh cluster, or a restarted node, may take to elect its leaders.
const READY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct NatsCluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    /// The authority that signed the nodes' certificates, when clients must use TLS.
    ca: Option<PathBuf>,
}

/// How a cluster asks its clients in.
#[derive(Debug, Default, Clone, Copy)]
pub struct Access<'a> {
    /// Clients log in as `hongfan` with this password.
    pub password: Option<&'a str>,
    /// Clients connect with TLS, to certificates of an authority made for the cluster.
    pub tls: bool,
}

#[derive(Debug)]
struct Node {
    name: String,
    client: u16,
    monitor: u16,
    child: Option<Child>,
}

impl Node {
    fn config(&self) -> PathBuf {
        PathBuf::from(format!("{}.conf", self.name))
    }
}

/// An authority (`ca.pem`) and the certificate it signs for the nodes on 127.0.0.1, in `dir`:
/// the certificate's and its key's files.
fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut authority = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    authority.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    authority.distinguished_name.push(DnType::CommonName, "hongfan test NATS authority");
    let ca_key = KeyPair::generate().expect("ca key");
    let ca = authority.self_signed(&ca_key).expect("ca");
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(names).expect("params").signed_by(&key, &ca, &ca_key);
    let (cert_file, key_file) = (dir.join("node.pem"), dir.join("node.key"));
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("ca.pem");
    std::fs::write(&cert_file, cert.expect("cert").pem()).expect("node.pem");
    std::fs::write(&key_file, key.serialize_pem()).expect("node.key");
    (cert_file, key_file)
}

/// A port nobody listens on now (the kernel's choice, released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl NatsCluster {
    /// Starts three nodes and waits until JetStream has a meta leader and every node is current.
    pub async fn start() -> NatsCluster {
        NatsCluster::start_with(Access::default()).await
    }

    /// The same, where clients must come in as `access` says.
    pub async fn start_with(access: Access<'_>) -> NatsCluster {
        // A port chosen free may be taken by another test before the node binds it: then the
        // whole cluster starts again, on other ports.
        for _ in 0..5 {
            let mut cluster = NatsCluster::configure(access);
            for i in 0..3 {
                cluster.spawn(i);
            }
            let mut ready = true;
            for i in 0..3 {
                ready = ready && cluster.ready(i, "js-server-only=true").await;
            }
            if ready {
                return cluster;
            }
            let clash = (0..3).any(|i| cluster.log(i).contains("address already in use"));
            assert!(clash, "nats not ready in {READY:?}:\n{}", cluster.log(0));
        }
        panic!("no free ports for three nats servers");
    }

    fn configure(access: Access<'_>) -> NatsCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = access.tls.then(|| certificates(dir.path()));
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let node = Node {
                name: format!("n{}", i + 1),
                client: free_port(),
                monitor: free_port(),
                child: None,
            };
            let others: Vec<String> = routes
                .iter()
                .filter(|r| *r != route)
                .map(|r| format!("nats-route://127.0.0.1:{r}"))
                .collect();
            // `no_advertise` keeps clients on the addresses they were given: a test that cuts
            // a connection (a proxy) must not be bypassed by a discovered address.
            let config = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                 max_payload: 4MB\n\
                 jetstream {{ store_dir: \"{store}\", max_memory_store: 64MB, max_file_store: 1GB }}\n\
                 cluster {{ name: hongfan-test, listen: 127.0.0.1:{route}, no_advertise: true, \
                 routes: [{others}] }}\n",
                name = node.name,
                client = node.client,
                monitor = node.monitor,
                store = dir.path().join(&node.name).display(),
                others = others.join(", "),
            );
            // As docs/operations.md has it: the password kept as a bcrypt hash.
            let config = match &tls {
                Some((cert, key)) => format!(
                    "{config}tls {{ cert_file: \"{}\", key_file: \"{}\", timeout: 2 }}\n",
                    cert.display(),
                    key.display()
                ),
                None => config,
            };
            let config = match access.password {
                Some(password) => {
                    let hash = bcrypt::hash(password, 11).expect("bcrypt");
                    format!("{config}authorization {{ user: hongfan, password: \"{hash}\" }}\n")
                }
                None => config,
            };
            std::fs::write(dir.path().join(node.config()), config).expect("write config");
            nodes.push(node);
        }
        let ca = tls.map(|_| dir.path().join("ca.pem"));
        NatsCluster { dir, nodes, ca }
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", node.name)))
            .expect("open log");
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(self.dir.path().join(node.config()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server (tests/run.sh installs it)");
        self.nodes[i].child = Some(child);
    }

    /// Waits until node `i` answers its health check (`check` is the query string); false if
    /// it exited or did not answer in time.
    async fn ready(&mut self, i: usize, check: &str) -> bool {
        let url = format!("http://127.0.0.1:{}/healthz?{check}", self.nodes[i].monitor);
        let http = reqwest::Client::new();
        let started = std::time::Instant::now();
        while started.elapsed() < READY {
            if let Ok(answer) = http.get(&url).send().await
                && answer.status().is_success()
            {
                return true;
            }
            let exited = self.nodes[i]
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().is_ok_and(|s| s.is_some()));
            if exited {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Every node's client address, for a connection that fails over between them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.client)).collect()
    }

    /// The client port of node `i`.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].client
    }

    /// Kills node `i` at once (kill -9).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again on its own store folder and waits until it is current with the
    /// cluster and its streams.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        if !self.ready(i, "").await {
            panic!("nats node {} not ready in {READY:?}:\n{}", i + 1, self.log(i));
        }
    }

    /// Waits, with a deadline, until each of `streams` has a leader and both other copies are
    /// current: a node brought back has caught up, so killing another next is one failure at a
    /// time, not two.
    pub async fn caught_up(&self, streams: &[&str]) {
        let js = async_nats::jetstream::new(self.client().await);
        let deadline = std::time::Instant::now() + READY * 4;
        for name in streams {
            loop {
                let cluster = match js.get_stream(*name).await {
                    Ok(mut stream) => stream.info().await.ok().and_then(|i| i.cluster.clone()),
                    Err(_) => None,
                };
                let current = cluster.as_ref().is_some_and(|c| {
                    c.leader.is_some()
                        && c.replicas.len() == self.nodes.len() - 1
                        && c.replicas.iter().all(|r| r.current && !r.offline)
                });
                if current {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name} has not caught up in {:?}: {cluster:?}",
                    READY * 4
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }

    /// The authority that signed the nodes' certificates, when clients must use TLS.
    pub fn ca(&self) -> Option<&std::path::Path> {
        self.ca.as_deref()
    }

    /// The log node `i` wrote, for a failing test's message.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.nodes[i].name)))
            .unwrap_or_default()
    }

    /// Connects a client to every node, as hongfan does.
    pub async fn client(&self) -> async_nats::Client {
        within(
            "a nats connection",
            match &self.ca {
                Some(ca) => async_nats::ConnectOptions::new()
                    .add_root_certificates(ca.clone())
                    .require_tls(true),
                None => async_nats::ConnectOptions::new(),
            }
            .ignore_discovered_servers()
            .connection_timeout(Duration::from_secs(2))
            .connect(self.urls()),
        )
        .await
        .expect("connect to nats")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A TCP proxy on loopback in front of one port, which a test can cut: every connection through
/// it ends and new ones are refused, as when a machine's network fails.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (cut, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut cutting = watch.clone();
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = cutting.wait_for(|cut| *cut) => return,
                };
                let Ok((mut inbound, _)) = accepted else { continue };
                let mut cutting = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cutting.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { port, cut }
    }

    /// Ends every connection through the proxy, and takes no new ones.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}
