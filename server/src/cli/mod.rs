//! The command line: its flags and commands, each concern in a module of its own — serving
//! (the default), the office's people and kiosks, backups.

mod backup;
mod office;
mod operator;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::auth::SessionPolicy;
use crate::hub::Limits;
use crate::server::Settings;
use crate::store::StoreOptions;
pub use office::{KeyCommand, KioskCommand, Open311Command, RoleArg, UserCommand};

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
    /// Most connections open at once from one client address; and the last eighth of
    /// --max-connections is kept for addresses that hold none.
    #[arg(long, default_value_t = 256)]
    pub connections_per_address: usize,
    /// Log lines as text (default) or JSON.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Mark session cookies Secure: set when a TLS proxy serves hongfan.
    #[arg(long)]
    pub secure_cookies: bool,
    /// Reports one device may send in a burst.
    #[arg(long, default_value_t = Limits::default().report_burst)]
    pub report_burst: u32,
    /// Reports one device may send per minute after a burst.
    #[arg(long, default_value_t = Limits::default().reports_per_minute)]
    pub reports_per_minute: u32,
    /// Messages waiting for one connection before it counts as too slow and is closed.
    #[arg(long, default_value_t = Limits::default().queue)]
    pub send_queue: usize,
    /// Serve /metrics (Prometheus) on this address only, not beside the pages.
    #[arg(long, env = "HONGFAN_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Outbound webhooks (企业微信, 钉钉, signed JSON): a TOML file of `[[webhook]]` tables.
    #[arg(long, env = "HONGFAN_WEBHOOKS")]
    pub webhooks: Option<PathBuf>,
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
    #[arg(long, default_value_t = Limits::default().sockets_per_address)]
    pub sockets_per_address: usize,
    /// Live WebSockets at once of one kiosk.
    #[arg(long, default_value_t = Limits::default().sockets_per_kiosk)]
    pub sockets_per_kiosk: usize,
    /// Live WebSockets at once of one person (their devices).
    #[arg(long, default_value_t = Limits::default().sockets_per_person)]
    pub sockets_per_person: usize,
    /// Lifecycle actions one account may send in a burst.
    #[arg(long, default_value_t = Limits::default().action_burst)]
    pub action_burst: u32,
    /// Lifecycle actions one account may send per minute after a burst.
    #[arg(long, default_value_t = Limits::default().actions_per_minute)]
    pub actions_per_minute: u32,
    /// Wrong proofs of a ticket one kiosk (or one address, on the status page) may give in a burst.
    #[arg(long, default_value_t = Limits::default().lookup_burst)]
    pub lookup_burst: u32,
    /// Wrong proofs of a ticket one kiosk (or one address) may give per minute after a burst.
    #[arg(long, default_value_t = Limits::default().lookups_per_minute)]
    pub lookups_per_minute: u32,
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
    /// Run as one of a primary and standby pair on NATS JetStream: the NATS servers'
    /// addresses, comma-separated (see docs/operations.md, "A standby"). Without it, one process.
    #[arg(long, env = "HONGFAN_NATS", value_delimiter = ',')]
    pub nats: Vec<String>,
    /// This server's name in the lease and the log, different on each (default: the machine's
    /// host name and --addr).
    #[arg(long, env = "HONGFAN_NODE")]
    pub node_name: Option<String>,
    /// How long the primary's lease lasts unrenewed: a dead primary is replaced after about
    /// this long. The same on both servers.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
    /// Copies of the log and the lease in the NATS cluster.
    #[arg(long, default_value_t = 3)]
    pub nats_replicas: usize,
    /// The NATS account hongfan logs in as (with `HONGFAN_NATS_PASSWORD`).
    #[arg(long, env = "HONGFAN_NATS_USER")]
    pub nats_user: Option<String>,
    /// Its password: only from the environment, never on the command line.
    #[arg(skip = std::env::var("HONGFAN_NATS_PASSWORD").ok())]
    pub nats_password: Option<String>,
    /// The certificate (PEM) of the authority that signed the NATS servers' certificates: the
    /// connections to NATS then use TLS, and only servers it vouches for are trusted.
    #[arg(long, env = "HONGFAN_NATS_CA")]
    pub nats_ca: Option<std::path::PathBuf>,
    /// The replicated log is cut short behind a fresh snapshot once it holds more groups than
    /// this (a group is one report or a few taken together).
    #[arg(long, default_value_t = 100_000)]
    pub nats_retain: u64,
    /// How often the primary looks whether the log holds more than --nats-retain groups.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub nats_compact_every: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the pages and the live feed (what runs with no command).
    Serve,
    /// Manage people's accounts: through the running server, or in the folder when it is
    /// stopped.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the stations' kiosks: through the running server, or in the folder when it is
    /// stopped.
    #[command(subcommand)]
    Kiosk(KioskCommand),
    /// Open311: the API keys other systems post requests with (through the running server, or
    /// in the folder when it is stopped).
    #[command(subcommand)]
    Open311(Open311Command),
    /// Fill an empty data folder with demo accounts and a month of history.
    Demo,
    /// Write a consistent backup of the data folder (the server may be running) to a file.
    Backup { file: PathBuf },
    /// Restore a backup file into a new, empty data folder (--data-dir).
    Restore { file: PathBuf },
    /// Check a data folder offline (the server must be stopped); exits 1 on any problem.
    Verify,
    /// Rebuild the store's sled files from the data folder's event log (the server must be
    /// stopped); the damaged files are kept aside in the folder. The server does this by
    /// itself at start when it finds them damaged.
    Repair,
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
                proxied: None,
            },
            sessions: SessionPolicy {
                person_idle: self.serve.session_idle,
                person_max: self.serve.session_max,
                kiosk_idle: self.serve.kiosk_session_idle,
                kiosk_max: self.serve.kiosk_session_max,
            },
            max_connections: self.serve.max_connections,
            connections_per_address: self.serve.connections_per_address,
            header_read_timeout: self.serve.header_read_timeout,
            metrics_addr: self.serve.metrics_addr,
            secure_cookies: self.serve.secure_cookies,
            store: StoreOptions::default(),
            webhooks: self.serve.webhooks.clone(),
            standby: (!self.serve.nats.is_empty()).then(|| crate::standby::StandbySettings {
                urls: self.serve.nats.clone(),
                node: self.serve.node_name.clone().unwrap_or_else(|| {
                    let host = std::fs::read_to_string("/proc/sys/kernel/hostname");
                    format!("{}/{}", host.unwrap_or_default().trim(), self.serve.addr)
                }),
                lease_ttl: self.serve.lease_ttl,
                replicas: self.serve.nats_replicas,
                login: self
                    .serve
                    .nats_user
                    .clone()
                    .map(|user| (user, self.serve.nats_password.clone().unwrap_or_default())),
                ca: self.serve.nats_ca.clone(),
                retain: self.serve.nats_retain,
                compact_every: self.serve.nats_compact_every,
            }),
            limits: Limits {
                report_burst: self.serve.report_burst,
                reports_per_minute: self.serve.reports_per_minute,
                queue: self.serve.send_queue.max(1),
                sockets_per_address: self.serve.sockets_per_address,
                sockets_per_kiosk: self.serve.sockets_per_kiosk,
                sockets_per_person: self.serve.sockets_per_person,
                action_burst: self.serve.action_burst,
                actions_per_minute: self.serve.actions_per_minute,
                lookup_burst: self.serve.lookup_burst,
                lookups_per_minute: self.serve.lookups_per_minute,
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
    let mut out = std::io::stdout();
    match &cli.command {
        None | Some(Command::Serve) => serve::serve(&cli).await,
        Some(Command::User(command)) => office::user(&cli.data, command, &mut out).await,
        Some(Command::Kiosk(command)) => office::kiosk(&cli.data, command, &mut out).await,
        Some(Command::Open311(command)) => office::open311(&cli.data, command, &mut out).await,
        Some(Command::Backup { file }) => backup::backup(&cli.data, file).await,
        Some(Command::Restore { file }) => backup::restore(&cli.data, file),
        Some(Command::Verify) => backup::verify(&cli.data),
        Some(Command::Repair) => backup::repair(&cli.data).await,
        Some(Command::Demo) => {
            crate::demo::fill(&cli.data.data_dir, cli.data.config.as_deref(), &mut out).await
        }
    }
}

impl Settings {
    /// The defaults the command line gives, on `data_dir` (for tests that build a server in
    /// process): one source for them, the flags' own.
    pub fn for_tests(data_dir: PathBuf) -> Settings {
        let mut settings = Cli::parse_from(["hongfan"]).settings();
        settings.data_dir = data_dir;
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags' defaults are the types' own (`Limits::default()`, `SessionPolicy::default()`):
    /// the durations are written out for `--help` ("365d", not "11months 30days …"), and held
    /// to the types' here.
    #[test]
    fn the_flags_defaults_are_the_types_own() {
        let settings = Cli::parse_from(["hongfan"]).settings();
        assert_eq!(format!("{:?}", settings.sessions), format!("{:?}", SessionPolicy::default()));
        assert_eq!(format!("{:?}", settings.limits), format!("{:?}", Limits::default()));
    }
}
