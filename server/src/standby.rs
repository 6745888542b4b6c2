//! A standby that takes over, on NATS JetStream.
//!
//! Two hongfan processes share one JetStream stream, the replicated log, and one key-value
//! bucket holding the lease. The process holding the lease is the primary: its committer appends
//! each group to the stream before its own disk (`store::Replicator`), naming the stream's last
//! sequence it knows (`Nats-Expected-Last-Sequence`), so that a process that lost the lease can
//! never append after another's takeover. The other follows the stream into its own folder
//! (`Store::apply_replicated`), serving boards and audits, and polls the lease. Once the primary
//! stops renewing it, the lease expires (the bucket's `max_age`); the standby takes it, applies the
//! stream to its end, appends a takeover marker naming that end (which fences the old primary
//! out), and starts writing (`Store::promote`). A primary that cannot renew its lease in time
//! stops acknowledging and exits, so that systemd starts it again, as a standby.
//!
//! Every message carries the data folder's epoch: a folder only ever follows its own history.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
    context::PublishErrorKind,
    kv,
    message::PublishMessage,
    stream,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::store::{Aux, AuxWrite, File, Record, ReplicaError, Replicator, Store, StoreError};

/// The stream, its one subject, the lease's bucket and key.
const STREAM: &str = "HONGFAN";
/// Groups and takeover marks have subjects of their own, so that whether the log has a mark is
/// one question to the stream (`Cluster::has_mark`).
const SUBJECTS: &str = "hongfan.log.>";
const GROUP_SUBJECT: &str = "hongfan.log.group";
const MARK_SUBJECT: &str = "hongfan.log.takeover";
const BUCKET: &str = "hongfan_lease";
const KEY: &str = "primary";
/// Each standby's position in the log, keyed by its node name: the primary never cuts the log
/// short of what a standby still has to read.
const FOLLOWERS: &str = "hongfan_followers";
/// How often a following standby says where it is.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// A standby not heard from for this long is no longer waited for: when it comes back, it is
/// told to start again from an empty folder (which is seeded from the snapshot).
const FORGET_FOLLOWER: Duration = Duration::from_secs(7 * 24 * 3600);
/// The object store holding the latest snapshot: the folder at a position of the log, from
/// which a standby with an empty folder starts once the log no longer holds its beginning.
const SNAPSHOT_BUCKET: &str = "hongfan_snapshot";
const SNAPSHOT_NAME: &str = "latest";
/// The snapshot as it is written, in the data folder, before it goes into NATS.
const SNAPSHOT_FILE: &str = "snapshot.gz.partial";
/// The header of every message: the data folder's epoch.
const EPOCH: &str = "Hongfan-Epoch";
/// How long a fresh cluster may take to elect the leaders of the stream and the bucket.
const SETUP: Duration = Duration::from_secs(30);
/// Events, office events or account records per record when a folder's history goes into an
/// empty stream, and about how many bytes of JSON at most (well under the message limit).
const BASE_RECORDS: usize = 500;
const BASE_BYTES: usize = 1 << 20;
/// A standby looks at the lease twice a beat, and takes one it has seen unchanged this many
/// times after the first (two and a half beats: a live primary renews every beat, and a renewal
/// that failed is sent again within a beat and a quarter).
const SILENT_LOOKS: u32 = 5;
/// The smallest message size the NATS servers must take: an attachment of 1 MiB in base64, with
/// what came before it in its group.
const MIN_PAYLOAD: usize = 3 << 20;

/// How this process joins a standby pair (`--nats`).
#[derive(Debug, Clone)]
pub struct StandbySettings {
    /// Every NATS server's address: the client moves to another when one fails.
    pub urls: Vec<String>,
    /// This process's name in the lease and the takeover markers.
    pub node: String,
    /// How long the lease lasts unrenewed: the longest a dead primary goes unnoticed.
    pub lease_ttl: Duration,
    /// Copies of the stream and the bucket in the NATS cluster (3 in production).
    pub replicas: usize,
    /// The NATS account and its password, when the servers ask for one.
    pub login: Option<(String, String)>,
    /// The authority that signed the NATS servers' certificates: TLS, when given.
    pub ca: Option<std::path::PathBuf>,
    /// The log is cut short (behind a fresh snapshot) once it holds more groups than this.
    pub retain: u64,
    /// How often the primary looks whether the log should be cut short.
    pub compact_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StandbyError {
    #[error("NATS at {urls}: {why}")]
    Nats { urls: String, why: String },
    #[error(
        "the data folder's epoch is {folder}, the replicated log's is {log}: this folder is another deployment's. Give this server an empty data folder to follow the log"
    )]
    OtherDeployment { folder: String, log: String },
    #[error(
        "the data folder has written up to position {folder} of the replicated log, which ends at {log}: the log was replaced. Give this server an empty data folder"
    )]
    AheadOfLog { folder: u64, log: u64 },
    #[error(
        "the data folder has written up to position {folder} of the replicated log, which now starts at {first} (the rest was cut short behind a snapshot): this folder cannot catch up. Move it aside and start this server with an empty data folder: it starts from the snapshot"
    )]
    BehindLog { folder: u64, first: u64 },
    #[error(
        "the lease bucket expires entries after {found:?}, this server was given --lease-ttl {given:?}: every server of the pair must use the same"
    )]
    LeaseTtl { found: Duration, given: Duration },
    #[error(
        "this data folder's history was being put into the empty replicated log when the server stopped, and only part of it is there. Delete the stream (`nats stream rm HONGFAN`, nothing else has used it) and start this server again"
    )]
    IncompleteHistory,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Lost(#[from] ReplicaError),
}

/// This process's connection to the log and the lease.
#[derive(Debug, Clone)]
pub struct Cluster {
    js: jetstream::Context,
    log: stream::Stream,
    lease: kv::Store,
    followers: kv::Store,
    snapshots: Snapshots,
    /// False for a log made by an older hongfan, which forbade cutting it short.
    compactable: bool,
    settings: StandbySettings,
}

/// The object store of the snapshot (which async-nats cannot print).
#[derive(Clone)]
struct Snapshots(jetstream::object_store::ObjectStore);

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(SNAPSHOT_BUCKET)
    }
}

/// How a process starts: the log's epoch when the log has one, and the lease when this
/// process took it (a new deployment's first server).
#[derive(Debug)]
pub struct Start {
    pub epoch: Option<String>,
    lease: Option<Lease>,
    /// The lease's renewal, running from the moment it was taken.
    kept: Option<Kept>,
}

/// The renewal task; it stops when this is dropped (a start that failed part-way).
#[derive(Debug)]
struct Kept(tokio::task::JoinHandle<Result<(), StandbyError>>);

impl Drop for Kept {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Cluster {
    /// Connects, and makes the stream and the lease bucket when they are missing.
    pub async fn connect(settings: &StandbySettings) -> Result<Cluster, StandbyError> {
        let nats = |why: String| StandbyError::Nats { urls: shown(&settings.urls), why };
        let options = match &settings.login {
            Some((user, password)) => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            None => async_nats::ConnectOptions::new(),
        };
        let options = match &settings.ca {
            Some(ca) => {
                // Read here, so that a wrong path is named, not reported as a failed handshake.
                if let Err(e) = std::fs::metadata(ca) {
                    return Err(nats(format!("the NATS CA file {}: {e}", ca.display())));
                }
                options.add_root_certificates(ca.clone()).require_tls(true)
            }
            None => options,
        };
        let client = options
            .name(&settings.node)
            .retry_on_initial_connect()
            // A NATS server that vanishes without closing the connection is noticed in a few
            // beats, not the client's default three minutes: the lease's renewals move on.
            .ping_interval(beat(settings.lease_ttl))
            .connection_timeout(Duration::from_secs(2))
            // The addresses given are the ones to use (a proxy in front of each server, say).
            .ignore_discovered_servers()
            .event_callback(|event| async move { tracing::info!(%event, "nats") })
            .connect(settings.urls.clone())
            .await
            .map_err(|e| nats(e.to_string()))?;
        // Each wait on the cluster is short: a renewal or an append that hangs is retried
        // while the lease lasts, and one that cannot finish in it gives up.
        let wait =
            (settings.lease_ttl / 4).clamp(Duration::from_millis(500), Duration::from_secs(5));
        let js = jetstream::ContextBuilder::new().timeout(wait).build(client.clone());
        let log = retried(|| {
            js.get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec![SUBJECTS.into()],
                num_replicas: settings.replicas,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                deny_delete: true,
                // Cut short behind a snapshot, by the primary only (`compact`).
                deny_purge: false,
                ..Default::default()
            })
        })
        .await
        .map_err(nats)?;
        // NATS never lets a stream made with `deny_purge` be purged: such a log (an older
        // hongfan's) keeps every group until it is made again (docs/operations.md).
        let compactable = !log.cached_info().config.deny_purge;
        if !compactable {
            tracing::warn!(
                "the replicated log was made by an older hongfan and cannot be cut short: it keeps every group (see \"Retention\" in docs/operations.md)"
            );
        }
        let snapshots = Snapshots(match js.get_object_store(SNAPSHOT_BUCKET).await {
            Ok(store) => store,
            Err(_) => retried(|| {
                js.create_object_store(jetstream::object_store::Config {
                    bucket: SNAPSHOT_BUCKET.into(),
                    num_replicas: settings.replicas,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
            })
            .await
            .map_err(nats)?,
        });
        // The lease's entry expires unrenewed.
        let bucket = retried(|| {
            js.get_or_create_stream(stream::Config {
                max_age: settings.lease_ttl,
                ..bucket_stream(BUCKET, settings.replicas)
            })
        })
        .await
        .map_err(nats)?;
        // A bucket made by an older hongfan was read from any copy: made to read from its
        // leader before use.
        let mut bucket = bucket;
        if bucket.cached_info().config.allow_direct {
            let config =
                stream::Config { allow_direct: false, ..bucket.cached_info().config.clone() };
            retried(|| js.update_stream(config.clone())).await.map_err(nats)?;
            bucket = retried(|| js.get_stream(format!("KV_{BUCKET}"))).await.map_err(nats)?;
        }
        // Connected by now: the server has said how large a message it takes.
        let max_payload = client.server_info().max_payload;
        if max_payload < MIN_PAYLOAD {
            return Err(nats(format!(
                "the server takes messages of at most {max_payload} bytes; hongfan needs {MIN_PAYLOAD} (a photo with its group): set `max_payload: 4MB` in every NATS server's configuration"
            )));
        }
        let found = bucket.cached_info().config.max_age;
        if found != settings.lease_ttl {
            return Err(StandbyError::LeaseTtl { found, given: settings.lease_ttl });
        }
        // The lease's requests wait one beat at most: a renewal hung in an election is sent
        // again long before a watching standby would take the lease (`Cluster::claim`).
        let lease_js =
            jetstream::ContextBuilder::new().timeout(beat(settings.lease_ttl)).build(client);
        let lease = lease_js.get_key_value(BUCKET).await.map_err(|e| nats(e.to_string()))?;
        retried(|| js.get_or_create_stream(bucket_stream(FOLLOWERS, settings.replicas)))
            .await
            .map_err(nats)?;
        let followers = js.get_key_value(FOLLOWERS).await.map_err(|e| nats(e.to_string()))?;
        Ok(Cluster {
            js,
            log,
            lease,
            followers,
            snapshots,
            compactable,
            settings: settings.clone(),
        })
    }

    fn nats(&self, why: impl std::fmt::Display) -> StandbyError {
        StandbyError::Nats { urls: shown(&self.settings.urls), why: why.to_string() }
    }

    /// Where the log ends (0 while it is empty).
    async fn end(&self) -> Result<u64, StandbyError> {
        Ok(self.bounds().await?.1)
    }

    /// The first sequence the log still holds (above 1 once it was cut short behind a
    /// snapshot; 0 or `end + 1` when it holds none) and its last.
    async fn bounds(&self) -> Result<(u64, u64), StandbyError> {
        let info = self.log.get_info().await.map_err(|e| self.nats(e))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// Whether any server has completed a takeover of this log (a mark follows a folder's
    /// history, when one was put in first). A log cut short was: only a primary cuts it.
    async fn has_mark(&self) -> Result<bool, StandbyError> {
        if self.bounds().await?.0 > 1 {
            return Ok(true);
        }
        match self.log.get_last_raw_message_by_subject(MARK_SUBJECT).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(self.nats(e)),
        }
    }

    /// What a process starts as: a follower of the log's epoch, or, when the log is empty and
    /// this process takes the lease first, the first primary (with an epoch of its own). An
    /// empty `data_dir` is seeded from the snapshot first when the log no longer holds its
    /// beginning.
    pub async fn start(
        &self,
        data_dir: &std::path::Path,
        shutdown: &CancellationToken,
    ) -> Result<Start, StandbyError> {
        let mut waiting = false;
        loop {
            let (first, end) = self.bounds().await?;
            if end > 0 {
                // Never cut past its last message (`compact`): the first names the epoch.
                let message = self.log.get_raw_message(first.max(1)).await;
                let message = message.map_err(|e| self.nats(e))?;
                let epoch = message.headers.get(EPOCH).map(|v| v.as_str().to_owned());
                let fresh = std::fs::read_dir(data_dir).map_or(true, |mut d| d.next().is_none());
                if first > 1 && fresh {
                    self.seed(data_dir, first).await?;
                }
                return Ok(Start { epoch, lease: None, kept: None });
            }
            if let Some(lease) = self.take_lease().await? {
                // Renewed from now on: opening a large folder may take longer than the lease.
                let kept = Some(keep(self, &lease, shutdown));
                return Ok(Start { epoch: None, lease: Some(lease), kept });
            }
            if !waiting {
                tracing::info!(
                    "the replicated log is empty and another server holds the lease: waiting for its first record"
                );
                waiting = true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn beat(&self) -> Duration {
        beat(self.settings.lease_ttl)
    }

    /// Says this server holds the log up to `position` (`FOLLOWERS`): the primary keeps what
    /// comes after it for a week.
    async fn report(&self, position: u64) -> Result<(), StandbyError> {
        let key = follower_key(self);
        self.followers.put(key, position.to_string().into()).await.map_err(|e| self.nats(e))?;
        Ok(())
    }

    /// Puts the latest snapshot into the empty `data_dir`, for a log that now starts at
    /// `first`. It is put together beside it (`<data_dir>.seeding`) and moved into place whole,
    /// so that a start cut short leaves nothing half-seeded behind.
    async fn seed(&self, data_dir: &std::path::Path, first: u64) -> Result<(), StandbyError> {
        tracing::info!("the replicated log was cut short: starting from its snapshot");
        // Said first: the primary takes no new snapshot and cuts nothing while this one is read.
        self.report(first - 1).await?;
        let object = self.snapshots.0.get(SNAPSHOT_NAME).await.map_err(|e| self.nats(e))?;
        let mut seeding = data_dir.as_os_str().to_owned();
        seeding.push(".seeding");
        let (seeding, dir) = (std::path::PathBuf::from(seeding), data_dir.to_owned());
        let seeded = tokio::task::spawn_blocking(move || {
            // What a start cut short left.
            let _ = std::fs::remove_dir_all(&seeding);
            let zipped = tokio_util::io::SyncIoBridge::new(object);
            let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(zipped));
            let seeded = crate::store::backup::seed(reader, &seeding).and_then(|seeded| {
                let moved = match std::fs::remove_dir(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => crate::durable::rename(&seeding, &dir),
                };
                moved.map_err(|e| StoreError::Write(format!("{}: {e}", dir.display())))?;
                Ok(seeded)
            });
            if seeded.is_err() {
                let _ = std::fs::remove_dir_all(&seeding);
            }
            seeded
        })
        .await
        .map_err(|e| StoreError::Write(e.to_string()))??;
        if seeded.position + 1 < first {
            return Err(StandbyError::BehindLog { folder: seeded.position, first });
        }
        tracing::info!(
            position = seeded.position,
            events = seeded.events,
            attachments = seeded.attachments,
            "seeded from the snapshot"
        );
        Ok(())
    }

    fn held(&self, revision: u64, sent: Instant) -> Lease {
        Lease { revision, valid_until: Arc::new(Mutex::new(sent + self.settings.lease_ttl)) }
    }

    /// Takes the lease if nobody holds it.
    async fn take_lease(&self) -> Result<Option<Lease>, StandbyError> {
        let sent = Instant::now();
        match self.lease.create(KEY, self.settings.node.clone().into()).await {
            Ok(revision) => Ok(Some(self.held(revision, sent))),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask for the lease");
                Ok(None)
            }
        }
    }

    /// Takes the lease if nobody holds it, or if its holder has left it unrenewed while this
    /// process watched it (`watch`) for `SILENT_LOOKS` looks, every read of it answered: a
    /// NATS election (reads failing) starts the watch again, so it never costs a primary its
    /// lease. Taking it is a compare-and-set on the revision watched, and the log's own fence
    /// (each append names the last sequence) stops a holder that was only slow.
    async fn claim(&self, watch: &mut Option<Watched>) -> Result<Option<Lease>, StandbyError> {
        let sent = Instant::now();
        let entry = match self.lease.entry(KEY).await {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the lease");
                *watch = None;
                return Ok(None);
            }
        };
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return self.take_lease().await;
        };
        // This process's own (a take whose answer was lost): held, from its revision.
        if entry.value == self.settings.node.as_bytes() {
            tracing::info!("the lease names this server: taking over");
            return Ok(Some(self.held(entry.revision, sent)));
        }
        match watch {
            Some(w) if w.revision == entry.revision => {
                w.looks += 1;
                // Both: enough looks, and enough time (looks can come late, never early).
                let silent_for = self.beat() * SILENT_LOOKS / 2;
                if w.looks < SILENT_LOOKS || w.since.elapsed() < silent_for {
                    return Ok(None);
                }
            }
            _ => {
                *watch =
                    Some(Watched { revision: entry.revision, since: Instant::now(), looks: 0 });
                return Ok(None);
            }
        }
        let holder = String::from_utf8_lossy(&entry.value).into_owned();
        let silent = watch.as_ref().map(|w| w.since.elapsed()).unwrap_or_default();
        *watch = None;
        match self.lease.update(KEY, self.settings.node.clone().into(), entry.revision).await {
            Ok(revision) => {
                tracing::warn!(%holder, ?silent, "the primary stopped renewing its lease: taking it over");
                Ok(Some(self.held(revision, sent)))
            }
            // Renewed meanwhile: its holder lives.
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the lease");
                Ok(None)
            }
        }
    }

    /// A follower of the log from `position + 1`, in order.
    async fn reader(
        &self,
        position: u64,
    ) -> Result<jetstream::consumer::pull::Ordered, StandbyError> {
        let consumer = self
            .log
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: position + 1 },
                filter_subject: SUBJECTS.into(),
                ..Default::default()
            })
            .await
            .map_err(|e| self.nats(e))?;
        consumer.messages().await.map_err(|e| self.nats(e))
    }
}

/// The stream of a key-value bucket, made as `create_key_value` would make it (that function
/// first reads the account's details, which async-nats cannot parse from a 2.9 server): one
/// value per key, read from the bucket's leader (a lagging copy would show an old revision).
fn bucket_stream(bucket: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: false,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    }
}

/// The NATS servers' addresses as they may be logged: without anything before an `@`.
fn shown(urls: &[String]) -> String {
    let hide = |url: &String| match url
        .split_once("://")
        .and_then(|(s, r)| Some((s, r.split_once('@')?.1)))
    {
        Some((scheme, host)) => format!("{scheme}://…@{host}"),
        None => url.clone(),
    };
    urls.iter().map(hide).collect::<Vec<_>>().join(",")
}

/// Retries a setup request while a new cluster elects its leaders.
async fn retried<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    mut request: impl FnMut() -> F,
) -> Result<T, String> {
    let started = Instant::now();
    loop {
        match request().await {
            Ok(value) => return Ok(value),
            Err(e) if started.elapsed() > SETUP => return Err(e.to_string()),
            Err(e) => {
                tracing::debug!(error = %e, "nats not ready yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// How often the primary renews its lease (a quarter of the lease, at most a second). A standby
/// takes over a lease left unrenewed for two and a half of these (`SILENT_LOOKS`) (`Cluster::claim`); the lease's
/// `max_age` is only the backstop.
fn beat(lease_ttl: Duration) -> Duration {
    (lease_ttl / 4).min(Duration::from_secs(1))
}

/// The lease this process holds: the revision it took it at (every append names it), and
/// until when it is surely still this process's (renewals move it on).
#[derive(Debug, Clone)]
struct Lease {
    revision: u64,
    valid_until: Arc<Mutex<Instant>>,
}

/// A lease another process holds, as a standby last saw it, since when, and how many looks
/// since found it unchanged.
#[derive(Debug, Clone, Copy)]
struct Watched {
    revision: u64,
    since: Instant,
    looks: u32,
}

impl Lease {
    fn valid(&self) -> bool {
        self.valid_until.lock().is_ok_and(|until| Instant::now() < *until)
    }
}

/// The primary's appends to the log, for its committer.
#[derive(Debug)]
struct Term {
    cluster: Cluster,
    runtime: tokio::runtime::Handle,
    epoch: String,
    lease: Lease,
    /// The log's last sequence as this process appended it.
    last: Mutex<u64>,
}

impl Term {
    /// Appends one message after the last this process knows, retrying the same message (the
    /// stream drops a duplicate) while the lease lasts. Refused for good once another process
    /// appended: the lease is lost.
    async fn append(
        &self,
        subject: &'static str,
        payload: bytes::Bytes,
    ) -> Result<u64, ReplicaError> {
        let last = *self.last.lock().map_err(|_| ReplicaError::Unreachable("poisoned".into()))?;
        let id = format!("{}-{}", self.lease.revision, last + 1);
        loop {
            if !self.lease.valid() {
                return Err(ReplicaError::LostLease);
            }
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(id.as_str())
                .expected_last_sequence(last)
                .header(EPOCH, self.epoch.as_str());
            let sent = self.cluster.js.send_publish(subject, message).await;
            let acked = match sent {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match acked {
                // Named after `last`, the message can only be at `last + 1`. (A resend that
                // meets its original still in flight is answered as a duplicate at 0 by NATS
                // before 2.10.20: it is sent again until the original's place is known.)
                Ok(ack) if ack.sequence == last + 1 => {
                    if let Ok(mut known) = self.last.lock() {
                        *known = ack.sequence;
                    }
                    return Ok(ack.sequence);
                }
                Ok(ack) => {
                    tracing::warn!(
                        sequence = ack.sequence,
                        expected = last + 1,
                        "an append's acknowledgement names another place; sending it again"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // An earlier send of this very message may have been stored and its answer
                // lost in an election: a new stream leader checks the expected sequence before
                // it looks for duplicates. Ours at `last + 1` is this append done; another's
                // means another process appended, and the lease is lost.
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    match self.cluster.log.get_raw_message(last + 1).await {
                        Ok(found) => {
                            let sent = found.headers.get(async_nats::header::NATS_MESSAGE_ID);
                            if sent.is_none_or(|sent| sent.as_str() != id) {
                                return Err(ReplicaError::LostLease);
                            }
                            tracing::info!(
                                sequence = last + 1,
                                "an append whose answer was lost was stored; going on"
                            );
                            if let Ok(mut known) = self.last.lock() {
                                *known = last + 1;
                            }
                            return Ok(last + 1);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read whose append the log holds; retrying");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                // Sent again, it would be refused again: stop, rather than hold the lease
                // without writing.
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(ReplicaError::Unreachable(format!(
                        "a group of {} bytes is larger than the NATS servers take: {e}",
                        payload.len()
                    )));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "append to the replicated log failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Replicator for Term {
    fn append(&self, record: &Record<'_>) -> Result<u64, ReplicaError> {
        let payload =
            serde_json::to_vec(record).map_err(|e| ReplicaError::Unreachable(e.to_string()))?;
        // The committer's own thread, outside the runtime: it may wait on it.
        self.runtime.block_on(Term::append(self, GROUP_SUBJECT, payload.into()))
    }
}

/// Checks a folder against the log, before it serves; the first server of a new deployment
/// (holding the lease of an empty log) takes over at once, so that its first groups are its own.
pub async fn begin(
    cluster: &Cluster,
    store: &Store,
    start: &mut Start,
    shutdown: &CancellationToken,
) -> Result<(), StandbyError> {
    if let Some(log) = &start.epoch
        && log != store.epoch()
    {
        let folder = store.epoch().to_owned();
        return Err(StandbyError::OtherDeployment { folder, log: log.clone() });
    }
    let (folder, (first, log)) = (store.position()?, cluster.bounds().await?);
    if folder > log {
        return Err(StandbyError::AheadOfLog { folder, log });
    }
    if folder + 1 < first {
        return Err(StandbyError::BehindLog { folder, first });
    }
    // A log that holds a folder's history without a mark after it: the first server is still
    // putting its history in, or stopped while it did.
    if log > 0 && !cluster.has_mark().await? {
        let fresh = store.last_seq()? == 0 && store.office().office.seq == 0;
        if folder == log {
            // This folder's history is all in (its position is written once it is): finish.
            tracing::info!("this folder's history is in the replicated log; taking over");
            let lease = loop {
                if let Some(lease) = cluster.take_lease().await? {
                    break lease;
                }
                tokio::time::sleep(cluster.settings.lease_ttl / 4).await;
            };
            start.kept = Some(keep(cluster, &lease, shutdown));
            start.lease = Some(lease);
        } else if fresh {
            tracing::info!(
                "waiting for the first server to put its history into the replicated log"
            );
            // NATS failing meanwhile is waited out too.
            while !cluster.has_mark().await.unwrap_or(false) {
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        } else {
            return Err(StandbyError::IncompleteHistory);
        }
    }
    if let Some(lease) = start.lease.clone() {
        if start.kept.is_none() {
            start.kept = Some(keep(cluster, &lease, shutdown));
        }
        take_over(cluster, store, lease).await?;
    }
    Ok(())
}

/// Runs the standby's side of a server after `begin`: follows the log while another process
/// holds the lease, takes over when it expires, and renews it while primary. Returns (and the
/// server stops) when `shutdown` fires, or on what it cannot get past: another deployment's
/// log, a lost lease.
pub async fn run(
    cluster: Cluster,
    store: Store,
    start: Start,
    shutdown: CancellationToken,
) -> Result<(), StandbyError> {
    let (mut kept, lease) = match (start.kept, start.lease) {
        (Some(kept), Some(lease)) => (kept, lease),
        _ => {
            let Some(lease) = follow(&cluster, &store, &shutdown).await? else { return Ok(()) };
            let kept = keep(&cluster, &lease, &shutdown);
            take_over(&cluster, &store, lease.clone()).await?;
            (kept, lease)
        }
    };
    let held = tokio::select! {
        held = &mut kept.0 => held,
        () = compacting(&cluster, &store, &lease, &shutdown) => return Ok(()),
    };
    held.map_err(|e| StandbyError::Lost(ReplicaError::Unreachable(e.to_string())))?
}

/// The primary's retention: every `compact_every` it says where it is (so that, should it
/// fail over, the new primary keeps the log for it as for a standby), and a log holding more
/// than `retain` groups is cut short behind a snapshot (`compact`). Runs until `shutdown`; a
/// round that fails is logged and tried again at the next.
async fn compacting(cluster: &Cluster, store: &Store, lease: &Lease, shutdown: &CancellationToken) {
    let every = cluster.settings.compact_every;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The position of the snapshot this server last took.
    let mut snapshot = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let reported = match store.position() {
            Ok(position) => cluster.report(position).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = reported {
            tracing::warn!(error = %e, "cannot say where this server is in the log");
        }
        if !cluster.compactable {
            continue;
        }
        match compact(cluster, store, lease, snapshot).await {
            Ok(taken) => snapshot = taken.or(snapshot),
            Err(e) => {
                tracing::warn!(error = %e, "cannot cut the replicated log short; trying again later");
            }
        }
    }
}

/// Cuts the log short once it holds more than `retain` groups: up to what every server heard
/// from in the last week has applied (and never its last group, which names the epoch), behind
/// a snapshot of this folder at a position P at least that far. The snapshot last taken
/// (`snapshot`, its P) serves when it reaches far enough; else a new one is written. Answers
/// the P of a new snapshot. Nothing is put or cut once the lease has run out.
async fn compact(
    cluster: &Cluster,
    store: &Store,
    lease: &Lease,
    snapshot: Option<u64>,
) -> Result<Option<u64>, StandbyError> {
    let (first, end) = cluster.bounds().await?;
    let held = (end + 1).saturating_sub(first.max(1));
    if held <= cluster.settings.retain {
        return Ok(None);
    }
    // How far the others let the log be cut: when not past its start, no snapshot is worth
    // taking (a standby lags, is being seeded, or was stopped for less than a week).
    let mut limit = end;
    let own = follower_key(cluster);
    let mut keys = cluster.followers.keys().await.map_err(|e| cluster.nats(e))?;
    while let Some(node) = keys.next().await {
        let node = node.map_err(|e| cluster.nats(e))?;
        if node == own {
            continue;
        }
        let Ok(Some(entry)) = cluster.followers.entry(&node).await else { continue };
        let age = time::OffsetDateTime::now_utc() - entry.created;
        let read = std::str::from_utf8(&entry.value).ok().and_then(|v| v.parse::<u64>().ok());
        match read {
            Some(read) if age < FORGET_FOLLOWER => limit = limit.min(read + 1),
            Some(_) => {
                tracing::info!(%node, "a server not heard from for a week is no longer waited for")
            }
            None => tracing::warn!(%node, "a server's place in the log does not read as a number"),
        }
    }
    if limit <= first {
        return Ok(None);
    }
    let started = Instant::now();
    let (position, taken) = match snapshot {
        Some(position) if position + 1 >= limit => (position, None),
        _ => {
            if !lease.valid() {
                return Err(ReplicaError::LostLease.into());
            }
            let (position, bytes) = put_snapshot(cluster, store).await?;
            tracing::info!(
                position,
                bytes,
                ms = started.elapsed().as_millis() as u64,
                "a snapshot of this folder is in NATS"
            );
            (position, Some(position))
        }
    };
    let keep_from = limit.min(position + 1);
    if keep_from > first {
        if !lease.valid() {
            return Err(ReplicaError::LostLease.into());
        }
        cluster.log.purge().sequence(keep_from).await.map_err(|e| cluster.nats(e))?;
        tracing::info!(from = keep_from, "the replicated log was cut short behind the snapshot");
    }
    Ok(taken)
}

/// Writes this folder as the snapshot (gzip, through a file of its own in the data folder,
/// overwritten each time) and puts it into NATS; its position and size.
async fn put_snapshot(cluster: &Cluster, store: &Store) -> Result<(u64, u64), StandbyError> {
    let failed = |e: std::io::Error| StoreError::Write(format!("the snapshot: {e}"));
    let path = store.dir().join(SNAPSHOT_FILE);
    let writer = std::fs::File::create(&path).map_err(failed)?;
    let taker = store.clone();
    let carried = tokio::task::spawn_blocking(move || {
        // Lines of JSON shrink to a tenth or so: NATS holds the snapshot, twice while a new
        // one replaces the old.
        let zipped = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
        let mut out = std::io::BufWriter::new(zipped);
        let carried = taker.standby_snapshot(&mut out)?;
        let written = out.into_inner().map_err(|e| e.into_error()).and_then(|z| z.finish());
        written.map_err(failed)?;
        Ok::<_, StoreError>(carried)
    })
    .await
    .map_err(|e| StoreError::Write(e.to_string()))??;
    let mut reader = tokio::fs::File::open(&path).await.map_err(failed)?;
    let put = cluster.snapshots.0.put(SNAPSHOT_NAME, &mut reader).await;
    let put = put.map_err(|e| cluster.nats(e))?;
    Ok((carried.position, put.size as u64))
}

/// Renews the lease from now on, on a task of its own: a takeover (reading the rest of the
/// log, putting a folder's history in) may take longer than the lease.
fn keep(cluster: &Cluster, lease: &Lease, shutdown: &CancellationToken) -> Kept {
    let (cluster, lease, shutdown) = (cluster.clone(), lease.clone(), shutdown.clone());
    Kept(tokio::spawn(async move { renew(&cluster, lease, &shutdown).await }))
}

/// Applies the log as it grows; the lease once it is free and this folder has the whole log
/// (`None` at shutdown). NATS failing meanwhile (a server dying, a connection lost) is waited
/// out.
async fn follow(
    cluster: &Cluster,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<Option<Lease>, StandbyError> {
    let mut read = store.position()?;
    let Some(mut messages) = reading(cluster, read, shutdown).await else { return Ok(None) };
    // The lease is watched, and the reader checked, twice a beat.
    let every = cluster.beat() / 2;
    let mut watch = None;
    let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // Looks delayed (NATS slow to answer) are not made up in a burst: each look is its own.
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When the reader last moved on or was seen at the log's end: a reader that has not for two
    // beats while NATS says the log is ahead is stuck (its NATS server died under it, say), and
    // is made again.
    let mut current_at = Instant::now();
    // Where this standby last said it was (`FOLLOWERS`), and when.
    let mut reported: Option<(u64, Instant)> = None;
    loop {
        let again = tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            message = messages.next() => match message {
                Some(Ok(message)) => {
                    let Ok(info) = message.info() else { continue };
                    let position = info.stream_sequence;
                    if position <= read {
                        continue;
                    }
                    if position != read + 1 {
                        tracing::warn!(read, position, "a gap in the replicated log's delivery; reading again");
                        true
                    } else {
                        apply(store, position, &message.subject, message.headers.as_ref(), message.payload.clone()).await?;
                        read = position;
                        current_at = Instant::now();
                        false
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "following the replicated log failed; reading again");
                    true
                }
                None => true,
            },
            _ = poll.tick() => match cluster.bounds().await {
                Ok((first, _)) if read + 1 < first => {
                    return Err(StandbyError::BehindLog { folder: read, first });
                }
                // Only a standby with the whole log may take over.
                Ok((_, end)) if end == read => {
                    report_when_due(cluster, read, &mut reported).await;
                    current_at = Instant::now();
                    match cluster.claim(&mut watch).await? {
                        Some(lease) => return Ok(Some(lease)),
                        None => false,
                    }
                }
                Ok(_) => {
                    watch = None;
                    report_when_due(cluster, read, &mut reported).await;
                    let stalled = current_at.elapsed() >= 4 * every;
                    if stalled {
                        tracing::warn!(read, "the replicated log's delivery stalled; reading again");
                        current_at = Instant::now();
                    }
                    stalled
                }
                // NATS not answering (electing a leader, say): a new reader would wait too.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read where the replicated log ends");
                    watch = None;
                    false
                }
            },
        };
        if again {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Some(fresh) = reading(cluster, read, shutdown).await else { return Ok(None) };
            messages = fresh;
        }
    }
}

/// Says where this standby is in the log, when it moved on and a while has passed (or a day,
/// so that the primary knows it is alive): the primary keeps what it has not read yet.
async fn report_when_due(cluster: &Cluster, read: u64, reported: &mut Option<(u64, Instant)>) {
    let due = match reported {
        Some((at, when)) if *at == read => when.elapsed() >= Duration::from_secs(24 * 3600),
        Some((_, when)) => when.elapsed() >= REPORT_EVERY,
        None => true,
    };
    if !due {
        return;
    }
    match cluster.report(read).await {
        Ok(()) => *reported = Some((read, Instant::now())),
        Err(e) => tracing::warn!(error = %e, "cannot say where this standby is in the log"),
    }
}

/// This server's key among the followers: its node name, with what a key cannot hold (the
/// `:` of an address) as `_`.
fn follower_key(cluster: &Cluster) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-/_=.".contains(c);
    cluster.settings.node.chars().map(|c| if allowed(c) { c } else { '_' }).collect()
}

/// A reader of the log after `read`, made again until NATS answers (`None` at shutdown).
async fn reading(
    cluster: &Cluster,
    read: u64,
    shutdown: &CancellationToken,
) -> Option<jetstream::consumer::pull::Ordered> {
    loop {
        match cluster.reader(read).await {
            Ok(messages) => return Some(messages),
            Err(e) => tracing::warn!(error = %e, "cannot read the replicated log; trying again"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Applies one message of the log: a group is written to the folder, a takeover marker only
/// checked. A message of another epoch stops the standby.
async fn apply(
    store: &Store,
    position: u64,
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    payload: bytes::Bytes,
) -> Result<(), StandbyError> {
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str().to_owned());
    let epoch = header(EPOCH).unwrap_or_default();
    if epoch != store.epoch() {
        let folder = store.epoch().to_owned();
        return Err(StandbyError::OtherDeployment { folder, log: epoch });
    }
    if subject != GROUP_SUBJECT {
        return Ok(());
    }
    let record: Record<'static> = serde_json::from_slice(&payload).map_err(|e| {
        StoreError::Read(format!("the replicated log's record {position} does not decode: {e}"))
    })?;
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.apply_replicated(position, record))
        .await
        .map_err(|e| StoreError::Write(e.to_string()))??;
    Ok(())
}

/// Applies the log to its end, fences it with a takeover marker naming that end, and starts
/// writing. An empty log first gets this folder's history, if it has one.
async fn take_over(cluster: &Cluster, store: &Store, lease: Lease) -> Result<(), StandbyError> {
    let started = Instant::now();
    let mut read = store.position()?;
    let term = loop {
        if !lease.valid() {
            return Err(ReplicaError::LostLease.into());
        }
        // NATS failing now (an election, say) is waited out while the lease lasts.
        let end = match cluster.end().await {
            Ok(end) => end,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read where the replicated log ends; retrying");
                tokio::time::sleep(cluster.beat() / 4).await;
                continue;
            }
        };
        while read < end {
            let message = match cluster.log.get_raw_message(read + 1).await {
                Ok(message) => message,
                Err(e) if lease.valid() => {
                    tracing::warn!(error = %e, position = read + 1, "cannot read the replicated log; retrying");
                    tokio::time::sleep(cluster.beat() / 4).await;
                    continue;
                }
                Err(e) => return Err(cluster.nats(e)),
            };
            apply(store, read + 1, &message.subject, Some(&message.headers), message.payload)
                .await?;
            read += 1;
        }
        let term = Term {
            cluster: cluster.clone(),
            runtime: tokio::runtime::Handle::current(),
            epoch: store.epoch().to_owned(),
            lease: lease.clone(),
            last: Mutex::new(read),
        };
        // An empty log takes this folder's history first, and the mark after it says it is
        // whole: no other server takes over a log without one.
        if end == 0 {
            publish_history(store, &term).await?;
        }
        let marker = serde_json::json!({ "node": cluster.settings.node, "lease": lease.revision });
        match term.append(MARK_SUBJECT, marker.to_string().into()).await {
            Ok(_) => break term,
            // Someone appended after the end read: read on, and try again.
            Err(ReplicaError::LostLease) if lease.valid() => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let (store, log) = (store.clone(), Arc::new(term));
    tokio::task::spawn_blocking(move || store.promote(log))
        .await
        .map_err(|e| StoreError::Write(e.to_string()))??;
    tracing::info!(
        node = %cluster.settings.node,
        lease = lease.revision,
        ms = started.elapsed().as_millis() as u64,
        "took over: this server is the primary"
    );
    Ok(())
}

/// A folder with history starting an empty log: its office, account records, events and
/// attachments go into the log first, as groups (each under the log's message size), so that a
/// standby starting from nothing gets all of it. The folder's position is written once the last
/// is in: a server that stopped part-way is told so at its next start (`begin`).
async fn publish_history(store: &Store, term: &Term) -> Result<(), StandbyError> {
    let mut position = 0;
    let mut append = async |record: Record<'_>| -> Result<(), StandbyError> {
        let payload = serde_json::to_vec(&record).map_err(|e| StoreError::Read(e.to_string()))?;
        position = term.append(GROUP_SUBJECT, payload.into()).await?;
        Ok(())
    };
    for office in bounded(store.office_history()?) {
        append(Record { office: office.into(), ..Default::default() }).await?;
    }
    for tree in [Aux::Users, Aux::Kiosks, Aux::Sessions, Aux::Outbox, Aux::Duty] {
        let entries = store.scan_entries(tree)?;
        let aux =
            entries.into_iter().map(|(key, value)| AuxWrite { tree, key, value: Some(value) });
        for aux in bounded(aux.collect()) {
            append(Record { aux: aux.into(), ..Default::default() }).await?;
        }
    }
    // Before the reports that name them, as on the primary.
    let files = store.attachments().ids()?;
    for id in &files {
        let Some(bytes) = store.attachments().get(id)? else { continue };
        append(Record { files: vec![File { bytes }].into(), ..Default::default() }).await?;
    }
    let mut after = 0;
    loop {
        let events = store.events_after(after, BASE_RECORDS).await?;
        let Some(last) = events.last() else { break };
        after = last.seq;
        for events in bounded(events) {
            append(Record { events: events.into(), ..Default::default() }).await?;
        }
    }
    if position > 0 {
        store.set_position(position).await?;
        tracing::info!(
            position,
            events = after,
            files = files.len(),
            "the folder's history is in the replicated log"
        );
    }
    Ok(())
}

/// `items` in runs of at most `BASE_RECORDS` and about `BASE_BYTES` of JSON each.
fn bounded<T: serde::Serialize>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = serde_json::to_vec(&item).map_or(0, |json| json.len());
        match runs.last_mut() {
            Some(run) if run.len() < BASE_RECORDS && bytes + size <= BASE_BYTES => {
                bytes += size;
                run.push(item);
            }
            _ => {
                bytes = size;
                runs.push(vec![item]);
            }
        }
    }
    runs
}

/// Renews the lease while primary, every beat. Losing it (another process took it, or it ran
/// out while NATS could not be reached) stops this server: it must not acknowledge another
/// write.
async fn renew(
    cluster: &Cluster,
    mut lease: Lease,
    shutdown: &CancellationToken,
) -> Result<(), StandbyError> {
    let node = cluster.settings.node.clone();
    let mut wait = cluster.beat();
    loop {
        // At a stop the lease is left to run out: the committer may still append the last
        // groups, and a standby taking over at once would fence them out.
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
        wait = cluster.beat();
        if !lease.valid() {
            tracing::error!("the lease ran out before it could be renewed");
            return Err(ReplicaError::LostLease.into());
        }
        let sent = Instant::now();
        match cluster.lease.update(KEY, node.clone().into(), lease.revision).await {
            Ok(revision) => {
                lease.revision = revision;
                if let Ok(mut until) = lease.valid_until.lock() {
                    *until = sent + cluster.settings.lease_ttl;
                }
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // A renewal whose answer was lost (in an election, say) has moved the revision
                // on: still this server's lease if the entry (read from the bucket's leader)
                // names it, and renewed from that revision at once.
                match cluster.lease.entry(KEY).await {
                    Ok(Some(entry))
                        if entry.operation == kv::Operation::Put
                            && entry.value == node.as_bytes() =>
                    {
                        tracing::info!(
                            from = lease.revision,
                            to = entry.revision,
                            "the lease moved on under a lost answer; renewing from where it is"
                        );
                        lease.revision = entry.revision;
                        wait = Duration::ZERO;
                    }
                    Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                        let holder = String::from_utf8_lossy(&entry.value).into_owned();
                        tracing::error!(%holder, "another server took the lease");
                        return Err(ReplicaError::LostLease.into());
                    }
                    Ok(_) => {
                        tracing::error!("the lease ran out in NATS before it could be renewed");
                        return Err(ReplicaError::LostLease.into());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read who holds the lease; retrying");
                        wait = cluster.beat() / 4;
                    }
                }
            }
            // Soon again: once NATS answers, the renewal must land before a standby's watch ends.
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the lease; retrying");
                wait = cluster.beat() / 4;
            }
        }
    }
}
