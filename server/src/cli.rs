//! The command line: serving (the default) and managing accounts in the data folder.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hongfan_shared::{CompoundId, Role};

use tracing_subscriber::EnvFilter;

use crate::auth::{Accounts, random_password};
use crate::clock::SystemClock;
use crate::hub::Limits;
use crate::server::Settings;
use crate::server::{Server, base_url};
use crate::store::{Store, StoreOptions};

#[derive(Debug, Parser)]
#[command(
    name = "hongfan",
    version,
    about = "红帆: realtime incident tracker for a community's grid offices"
)]
pub struct Cli {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// The data folder (created on first start).
    #[arg(long, env = "HONGFAN_DATA_DIR", default_value = "hongfan-data", global = true)]
    pub data_dir: PathBuf,
    /// A community configuration file (TOML) instead of the built-in 财工街社区.
    #[arg(long, env = "HONGFAN_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HONGFAN_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Another origin allowed to open WebSockets (for example https://hongfan.example.org when
    /// a proxy serves the pages under that name); the server's own origin always is.
    #[arg(long = "allow-origin", env = "HONGFAN_ALLOW_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Most connections open at once; more are refused.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Log lines as text (default) or JSON.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Mark session cookies Secure: set when a TLS proxy serves hongfan.
    #[arg(long)]
    pub secure_cookies: bool,
    /// Reports one device may send in a burst.
    #[arg(long, default_value_t = 10)]
    pub report_burst: u32,
    /// Reports one device may send per minute after a burst.
    #[arg(long, default_value_t = 30)]
    pub reports_per_minute: u32,
    /// Messages waiting for one connection before it counts as too slow and is closed.
    #[arg(long, default_value_t = 512)]
    pub send_queue: usize,
    /// Serve /metrics (Prometheus) on this address only, not beside the pages.
    #[arg(long, env = "HONGFAN_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// How long a client may take to send its HTTP request headers.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's whole body.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,
    /// Another host name this server answers to (a name in the Host header), besides IP
    /// addresses, localhost and the hosts of --allow-origin. Repeat for more.
    #[arg(long = "allow-host", env = "HONGFAN_ALLOW_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// The reverse proxy (its address) whose X-Forwarded-For names the client; without it, the
    /// peer's address is the client's.
    #[arg(long, env = "HONGFAN_TRUSTED_PROXY")]
    pub trusted_proxy: Option<std::net::IpAddr>,
    /// Live WebSockets at once from one client address.
    #[arg(long, default_value_t = 64)]
    pub sockets_per_address: usize,
    /// Live WebSockets at once of one kiosk.
    #[arg(long, default_value_t = 2)]
    pub sockets_per_kiosk: usize,
    /// Live WebSockets at once of one person (their devices).
    #[arg(long, default_value_t = 4)]
    pub sockets_per_person: usize,
    /// Lifecycle actions one account may send in a burst.
    #[arg(long, default_value_t = 30)]
    pub action_burst: u32,
    /// Lifecycle actions one account may send per minute after a burst.
    #[arg(long, default_value_t = 60)]
    pub actions_per_minute: u32,
    /// A person's session ends after this long unused.
    #[arg(long, default_value = "3d", value_parser = humantime::parse_duration)]
    pub session_idle: Duration,
    /// A person's session ends this long after login, used or not.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub session_max: Duration,
    /// A kiosk's session ends after this long unused.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub kiosk_session_idle: Duration,
    /// A kiosk's session ends this long after pairing.
    #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
    pub kiosk_session_max: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the pages and the live feed (what runs with no command).
    Serve,
    /// Manage people's accounts (the server must be stopped).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage kiosk credentials (the server must be stopped).
    #[command(subcommand)]
    Kiosk(KioskCommand),
    /// Fill an empty data folder with demo accounts and a month of history.
    Demo,
    /// Write a consistent backup of the data folder (the server may be running) to a file.
    Backup { file: PathBuf },
    /// Restore a backup file into a new, empty data folder (--data-dir).
    Restore { file: PathBuf },
    /// Check a data folder offline (the server must be stopped); exits 1 on any problem.
    Verify,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Worker,
    Supervisor,
    BuildingHead,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account; prints a random password unless --password-stdin is given.
    Add {
        login: String,
        /// The name people see, for example 王芳.
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, value_enum, default_value = "worker")]
        role: RoleArg,
        /// A compound the account works in (repeat for more).
        #[arg(long = "compound")]
        compounds: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    /// Set a new password (random unless --password-stdin), and enable the account.
    Passwd {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    Disable {
        login: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KioskCommand {
    /// Make a credential for a compound's station kiosk; it is printed once.
    Add {
        compound: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    List,
    Revoke {
        id: String,
    },
}

impl Cli {
    pub fn settings(&self) -> Settings {
        Settings {
            data_dir: self.data.data_dir.clone(),
            config: self.data.config.clone(),
            edge: crate::http::guard::Edge {
                allowed_origins: self.serve.allowed_origins.clone(),
                allowed_hosts: self
                    .serve
                    .allowed_hosts
                    .iter()
                    .cloned()
                    .chain(self.serve.allowed_origins.iter().filter_map(|o| host_of(o)))
                    .collect(),
                trusted_proxy: self.serve.trusted_proxy,
                body_timeout: self.serve.body_timeout,
            },
            sessions: crate::auth::SessionPolicy {
                person_idle: self.serve.session_idle,
                person_max: self.serve.session_max,
                kiosk_idle: self.serve.kiosk_session_idle,
                kiosk_max: self.serve.kiosk_session_max,
            },
            max_connections: self.serve.max_connections,
            header_read_timeout: self.serve.header_read_timeout,
            metrics_addr: self.serve.metrics_addr,
            secure_cookies: self.serve.secure_cookies,
            store: StoreOptions::default(),
            limits: Limits {
                report_burst: self.serve.report_burst,
                reports_per_minute: self.serve.reports_per_minute,
                queue: self.serve.send_queue.max(1),
                sockets_per_address: self.serve.sockets_per_address,
                sockets_per_kiosk: self.serve.sockets_per_kiosk,
                sockets_per_person: self.serve.sockets_per_person,
                action_burst: self.serve.action_burst,
                actions_per_minute: self.serve.actions_per_minute,
                ..Limits::default()
            },
        }
    }
}

/// `https://hongfan.example.org:8443` → `hongfan.example.org`.
fn host_of(origin: &str) -> Option<String> {
    let authority = origin.split("://").nth(1)?.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    (!host.is_empty()).then(|| host.to_owned())
}

fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
    } else {
        Ok((random_password(), true))
    }
}

async fn open_accounts(data: &DataArgs) -> anyhow::Result<(Store, Accounts)> {
    let community = Arc::new(crate::config::load(data.config.as_deref())?);
    let store = Store::open(
        &data.data_dir,
        community,
        Arc::new(SystemClock),
        StoreOptions::default(),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\n(is the server running? stop it first: the data folder is locked while it runs)"
        )
    })?;
    let accounts = Accounts::new(store.clone(), Arc::new(SystemClock))?;
    Ok((store, accounts))
}

/// Runs an account command against the data folder; prints to `out`.
pub async fn manage(
    data: &DataArgs,
    command: &Command,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (store, accounts) = open_accounts(data).await?;
    let result = async {
        match command {
            Command::Serve
            | Command::Demo
            | Command::Backup { .. }
            | Command::Restore { .. }
            | Command::Verify => {}
            Command::User(UserCommand::Add { login, name, role, compounds, password_stdin }) => {
                let role = match role {
                    RoleArg::Worker => Role::Worker,
                    RoleArg::Supervisor => Role::Supervisor,
                    RoleArg::BuildingHead => Role::BuildingHead,
                };
                let compounds: Vec<CompoundId> =
                    compounds.iter().map(|c| CompoundId(c.clone())).collect();
                let (password, show) = password(*password_stdin)?;
                let user = accounts.add_user(login, name, role, &compounds, &password).await?;
                writeln!(out, "added {} ({}, {:?})", user.login, user.name, user.role)?;
                if show {
                    writeln!(out, "password: {password}")?;
                }
            }
            Command::User(UserCommand::List) => {
                for user in accounts.users()? {
                    let compounds: Vec<&str> =
                        user.compounds.iter().map(|c| c.0.as_str()).collect();
                    let state = if user.disabled { "disabled" } else { "active" };
                    writeln!(
                        out,
                        "{}\t{}\t{:?}\t{}\t{state}",
                        user.login,
                        user.name,
                        user.role,
                        compounds.join(",")
                    )?;
                }
            }
            Command::User(UserCommand::Passwd { login, password_stdin }) => {
                let (password, show) = password(*password_stdin)?;
                accounts.set_password(login, &password).await?;
                writeln!(out, "password changed for {login}")?;
                if show {
                    writeln!(out, "password: {password}")?;
                }
            }
            Command::User(UserCommand::Disable { login }) => {
                accounts.disable(login).await?;
                writeln!(out, "disabled {login}")?;
            }
            Command::Kiosk(KioskCommand::Add { compound, name }) => {
                let (kiosk, credential) =
                    accounts.add_kiosk(&CompoundId(compound.clone()), name).await?;
                writeln!(out, "added {} for {} ({})", kiosk.id, kiosk.compound.0, kiosk.name)?;
                writeln!(out, "credential: {credential}")?;
            }
            Command::Kiosk(KioskCommand::List) => {
                for kiosk in accounts.kiosks()? {
                    let state = if kiosk.revoked { "revoked" } else { "active" };
                    writeln!(out, "{}\t{}\t{}\t{state}", kiosk.id, kiosk.compound.0, kiosk.name)?;
                }
            }
            Command::Kiosk(KioskCommand::Revoke { id }) => {
                accounts.revoke(id).await?;
                writeln!(out, "revoked {id}")?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await?;
    result
}

/// The whole program: `main.rs` only calls this, so that tests run the very same code.
pub async fn main() -> anyhow::Result<()> {
    // Everything this process creates (the data folder, backups, tokens) holds residents'
    // personal data: for the account that runs it only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only what the operator asked for.
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.serve.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match &cli.command {
        None | Some(Command::Serve) => serve(&cli).await,
        Some(Command::Backup { file }) => backup(&cli.data, file).await,
        Some(Command::Restore { file }) => {
            let input = std::io::BufReader::new(std::fs::File::open(file)?);
            let carried = crate::store::backup::restore(input, &cli.data.data_dir)?;
            let mut out = std::io::stdout();
            writeln!(
                out,
                "restored {} events ({} incidents, {} account records) into {}",
                carried.events,
                carried.incidents,
                carried.records,
                cli.data.data_dir.display()
            )?;
            Ok(())
        }
        Some(Command::Verify) => {
            let report = crate::store::backup::verify(&cli.data.data_dir)?;
            let mut out = std::io::stdout();
            writeln!(
                out,
                "checked {} events and {} incident states in {}",
                report.events,
                report.incidents,
                cli.data.data_dir.display()
            )?;
            if report.problems.is_empty() {
                writeln!(out, "ok: the log has no gap and every state matches the log")?;
                Ok(())
            } else {
                for problem in &report.problems {
                    writeln!(out, "problem: {problem}")?;
                }
                anyhow::bail!(
                    "{} problem(s) found in {}",
                    report.problems.len(),
                    cli.data.data_dir.display()
                )
            }
        }
        Some(Command::Demo) => {
            crate::demo::fill(
                &cli.data.data_dir,
                cli.data.config.as_deref(),
                &mut std::io::stdout(),
            )
            .await
        }
        Some(command) => manage(&cli.data, command, &mut std::io::stdout()).await,
    }
}

async fn serve(cli: &Cli) -> anyhow::Result<()> {
    let settings = cli.settings();
    let listener = tokio::net::TcpListener::bind(cli.serve.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cli.serve.addr))?;
    let server = Server::open(settings.clone(), Arc::new(SystemClock)).await?;
    let url = base_url(listener.local_addr()?);
    // The banner is for a person at a terminal; if nobody reads stdout, the server still serves.
    if let Err(e) = banner(&url, &settings, &server) {
        tracing::warn!(error = %e, "cannot print the start banner");
    }
    let metrics = match cli.serve.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?,
        ),
        None => None,
    };
    if let Some(metrics) = &metrics {
        tracing::info!(url = %format!("{}/metrics", base_url(metrics.local_addr()?)), "metrics");
    }
    server.run(listener, metrics, shutdown_signal()).await
}

/// Backs up the data folder: through the running server when there is one (sled lets only one
/// process open the folder), else directly.
async fn backup(data: &DataArgs, file: &std::path::Path) -> anyhow::Result<()> {
    let url = std::fs::read_to_string(data.data_dir.join(crate::server::URL_FILE)).ok();
    let partial = file.with_extension("partial");
    let through_server = match url {
        Some(url) => {
            let token = std::fs::read_to_string(data.data_dir.join(crate::server::TOKEN_FILE))?;
            match fetch_backup(url.trim(), token.trim(), &partial).await {
                Ok(()) => true,
                // A server that was killed leaves its URL behind: then read the folder itself.
                Err(e)
                    if e.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused) =>
                {
                    false
                }
                Err(e) => return Err(e),
            }
        }
        None => false,
    };
    let carried = match through_server {
        true => None,
        false => {
            let community = Arc::new(crate::config::load(data.config.as_deref())?);
            let store = Store::open(
                &data.data_dir,
                community,
                Arc::new(SystemClock),
                StoreOptions::default(),
            )?;
            let mut out = std::io::BufWriter::new(std::fs::File::create(&partial)?);
            let carried = store.backup(&mut out)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            store.close().await?;
            Some(carried)
        }
    };
    // Only a complete backup takes the file's name.
    std::fs::rename(&partial, file)?;
    let mut out = std::io::stdout();
    match carried {
        Some(c) => writeln!(
            out,
            "backed up {} events and {} account records to {}",
            c.events,
            c.records,
            file.display()
        )?,
        None => writeln!(out, "backed up the running server to {}", file.display())?,
    }
    Ok(())
}

/// Streams `/api/operator/backup` into `to`, over plain HTTP/1.1 to the local server.
async fn fetch_backup(url: &str, token: &str, to: &std::path::Path) -> anyhow::Result<()> {
    use http_body_util::BodyExt;
    let authority = url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&authority).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = axum::http::Request::get("/api/operator/backup")
        .header("host", authority)
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "the server refused the backup: {}",
        response.status()
    );
    let mut body = response.into_body();
    let mut file = std::io::BufWriter::new(std::fs::File::create(to)?);
    // The last line, kept as the stream passes, tells a complete backup from a cut one without
    // reading the file again.
    let mut tail: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            file.write_all(&data)?;
            tail.extend_from_slice(&data);
            let keep = tail[..tail.len().saturating_sub(1)].iter().rposition(|&b| b == b'\n');
            if let Some(newline) = keep {
                tail.drain(..=newline);
            }
        }
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    anyhow::ensure!(tail.starts_with(b"{\"end\""), "the backup stream ended early");
    Ok(())
}

fn banner(url: &str, settings: &Settings, server: &Server) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {url}")?;
    let community = &server.app().hub.store().community().name;
    writeln!(out, "红帆 hongfan {} · {community}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "  数据目录 data folder   {}", settings.data_dir.display())?;
    writeln!(out, "  首页     home          {url}/")?;
    writeln!(out, "  自助机   kiosk         {url}/kiosk")?;
    writeln!(out, "  工作台   board         {url}/board")?;
    writeln!(out, "  督办     audit         {url}/audit")?;
    if let Some(first) = &server.first_start {
        writeln!(
            out,
            "\n首次启动：以下账号只显示这一次，请记下。First start: shown only this once."
        )?;
        writeln!(
            out,
            "  书记账号 supervisor    {} / {}",
            first.supervisor_login, first.supervisor_password
        )?;
        for (kiosk, credential) in &first.kiosks {
            writeln!(
                out,
                "  {} 自助机 kiosk {}: {url}/kiosk#pair={credential}",
                kiosk.name, kiosk.id
            )?;
        }
    }
    out.flush()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
