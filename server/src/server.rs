//! Running the server: open the store, start the hub, accept connections, shut down in order.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hongfan_shared::Community;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::auth::Accounts;
use crate::clock::SharedClock;
use crate::http::{self, App};
use crate::hub::{Hub, Limits};
use crate::limits::{ConnectionSlot, SlotRefused, Slots};
use crate::office::FirstStart;
use crate::store::{Mode, Store, StoreOptions};

/// Everything `run` needs, from flags, environment and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    /// Who may talk to the server, and from where.
    pub edge: crate::http::guard::Edge,
    pub sessions: crate::auth::SessionPolicy,
    pub max_connections: usize,
    /// Most connections from one client address (see `limits::Slots`).
    pub connections_per_address: usize,
    pub header_read_timeout: Duration,
    pub secure_cookies: bool,
    pub limits: Limits,
    /// Serve `/metrics` on its own address instead of beside the pages.
    pub metrics_addr: Option<SocketAddr>,
    pub store: StoreOptions,
    /// The webhooks file (`[[webhook]]` tables), if any.
    pub webhooks: Option<PathBuf>,
    /// One of a primary and standby pair on NATS JetStream (`--nats`), if any.
    pub standby: Option<crate::standby::StandbySettings>,
}

/// How long shutdown waits for sockets to take their close frame and end.
const DRAIN: Duration = Duration::from_secs(5);

/// A server whose store is open, ready to serve.
#[derive(Debug)]
pub struct Server {
    app: App,
    settings: Settings,
    shutdown: CancellationToken,
    /// Set on the very first start: the accounts that were made and must be shown once.
    pub first_start: Option<FirstStart>,
}

impl Server {
    /// Loads the configuration, opens (or creates) the store and makes the first accounts.
    pub async fn open(settings: Settings, clock: SharedClock) -> anyhow::Result<Server> {
        let communities: Arc<[Community]> = crate::config::load(settings.config.as_deref())?.into();
        let webhooks = match &settings.webhooks {
            Some(path) => Arc::new(crate::webhooks::Webhooks::load(path, &communities)?),
            None => Arc::default(),
        };
        let shutdown = CancellationToken::new();
        // With a standby, the store opens following the log; it writes once it holds the lease.
        let mut standby = match &settings.standby {
            Some(standby) => {
                let cluster = crate::standby::Cluster::connect(standby).await?;
                let start = cluster.start(&settings.data_dir, &shutdown).await?;
                Some((cluster, start))
            }
            None => None,
        };
        let mode = match &standby {
            Some((_, start)) => Mode::Standby { epoch: start.epoch.clone() },
            None => settings.store.mode.clone(),
        };
        let store = Store::open(
            &settings.data_dir,
            communities.clone(),
            clock.clone(),
            // A file given to the server adds the communities the folder does not hold yet.
            StoreOptions {
                webhooks: webhooks.clone(),
                join: settings.config.is_some(),
                mode,
                ..settings.store.clone()
            },
        )?;
        if let Some((cluster, start)) = &mut standby {
            crate::standby::begin(cluster, &store, start, &shutdown).await?;
        }
        // The file seeds a community the folder does not hold; afterwards it is the office's
        // to edit.
        let office = store.office();
        for community in communities.iter() {
            if office.office.communities.get(&community.id).is_some_and(|c| **c != *community) {
                tracing::warn!(
                    community = %community.id,
                    "the data folder's community differs from the configuration given: the \
                     folder's is used (change it on the admin page, /admin)"
                );
            }
        }
        let accounts =
            Arc::new(Accounts::new(store.clone(), clock)?.with_sessions(settings.sessions));
        // A standby's first accounts are the primary's, which it follows.
        let first_start = if store.is_standby() { None } else { accounts.first_start().await? };
        let operator_token = write_operator_token(&settings.data_dir)?;
        if let Some((cluster, start)) = standby {
            let (store, stop) = (store.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(e) = crate::standby::run(cluster, store.clone(), start, stop).await {
                    tracing::error!(error = %e, "the standby stopped");
                    store.health().fail(format!("standby: {e}"));
                }
            });
        }
        // Always: a platform's API key may bring work orders whose changes go to its webhook.
        let deliverer = crate::outbox::Deliverer::start(store.clone(), webhooks, shutdown.clone());
        let hub = Hub::start(store, settings.limits.clone(), shutdown.clone(), accounts.ended());
        // Behind the trusted proxy every connection is the proxy's: the cap per address holds
        // for each forwarded client's requests instead (`http::guard`).
        let mut edge = settings.edge.clone();
        if edge.trusted_proxy.is_some() {
            edge.proxied =
                Some(Slots::new(settings.max_connections, settings.connections_per_address));
        }
        let app = App {
            hub,
            accounts,
            edge: Arc::new(edge),
            secure_cookies: settings.secure_cookies,
            operator_token: Arc::new(operator_token),
            metrics_public: settings.metrics_addr.is_none(),
            webhooks: deliverer,
        };
        Ok(Server { app, settings, shutdown, first_start })
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves on `listener` until `signal` resolves, then closes every socket with a close
    /// frame, waits for the socket tasks, and makes the store durable and closed. `ready` is
    /// called once the command line can find this server (`server.url` is written): whatever
    /// announces the server must wait for it, or a command run on the announcement would take
    /// the folder for one with no server.
    pub async fn run(
        self,
        listener: TcpListener,
        metrics: Option<TcpListener>,
        signal: impl Future<Output = ()>,
        ready: impl FnOnce(),
    ) -> anyhow::Result<()> {
        let Server { app, settings, shutdown, .. } = self;
        if let Some(metrics) = metrics {
            let router = http::metrics_router(app.clone());
            let stop = shutdown.clone();
            app.hub.tasks().spawn(async move {
                let served = axum::serve(metrics, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            });
        }
        // Tells `hongfan backup` where this server answers.
        let url_file = settings.data_dir.join(URL_FILE);
        crate::durable::write(&url_file, base_url(listener.local_addr()?).as_bytes())?;
        ready();
        let router = http::router(app.clone());
        let slots = Slots::new(settings.max_connections, settings.connections_per_address);
        let connections = TaskTracker::new();
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1.timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
        tokio::pin!(signal);
        let store_failed = app.hub.store().health().failed().clone();
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut signal => break,
                // A store that cannot write must not look alive: stop, and exit non-zero.
                () = store_failed.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let from = (settings.edge.trusted_proxy != Some(peer.ip())).then_some(peer.ip());
            let slot: ConnectionSlot = match slots.take(from) {
                Ok(slot) => Arc::new(slot),
                Err(refused) => {
                    match refused {
                        SlotRefused::Full => tracing::warn!(
                            max = settings.max_connections,
                            "connection refused: at the connection cap"
                        ),
                        SlotRefused::Address => tracing::debug!(
                            %peer,
                            "connection refused: the address holds its share of connections"
                        ),
                    }
                    drop(stream);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let held = slot.clone();
            let service =
                router.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(held.clone());
                    request
                });
            let connection = http1
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            let stop = shutdown.clone();
            connections.spawn(async move {
                // The slot lives as long as the TCP connection, and the WebSocket it became.
                let _slot = slot;
                tokio::pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = stop.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "http connection ended with an error");
                }
            });
        }
        tracing::info!("shutting down: closing sockets");
        drop(listener);
        shutdown.cancel();
        let hub_tasks = app.hub.tasks().clone();
        hub_tasks.close();
        connections.close();
        let drained = tokio::time::timeout(DRAIN, async {
            hub_tasks.wait().await;
            connections.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!("some connections did not close in time");
        }
        let closed = app.hub.store().close().await;
        let _ = std::fs::remove_file(url_file);
        if let Some(failure) = app.hub.store().health().failure() {
            tracing::error!(%failure, "stopped because the store cannot write");
            anyhow::bail!("the store stopped writing: {failure}");
        }
        closed?;
        tracing::info!("stopped; the store is closed");
        Ok(())
    }
}

/// Files beside sled's in the data folder: the running server's URL and the operator token.
pub const URL_FILE: &str = "server.url";
pub const TOKEN_FILE: &str = "operator.token";

/// A new operator token each start, readable only by the account running the server.
fn write_operator_token(dir: &std::path::Path) -> std::io::Result<String> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    crate::durable::write(&dir.join(TOKEN_FILE), token.as_bytes())?;
    Ok(token)
}

/// The local address a listener is bound to, as a URL base.
pub fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
