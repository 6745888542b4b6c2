//! The store: the event log and incident state in sled, written by one committer.
//!
//! `Store` is a cheap-to-clone handle. Writes go to the committer over a channel (or, one at a
//! time, commit themselves under its lock) and are answered once durable; reads of open
//! incidents come from the published state, which holds only what is durable. Every durable
//! group of events is also broadcast as a `Commit`.

pub mod attachments;
pub mod backup;
mod committer;
mod deadlines;
mod disk;
mod housekeeping;
mod places;
pub mod replica;
mod wal;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use hongfan_shared::audit::{AuditQuery, AuditRow, Summary};
use hongfan_shared::office::{Office, OfficeChange, OfficeEvent};
use hongfan_shared::{
    Action, Actor, Community, CommunityId, CompoundId, Event, Incident, IncidentId, LifecycleError,
    Principal, Report, Seq,
};
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use committer::{Command, Committer};
use disk::Disk;
pub use disk::{AuxWrite, Entry, FaultPoint, Faults};
pub use replica::{File, Record, ReplicaError, Replicator};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("no incident {}", .0.0)]
    NotFound(IncidentId),
    #[error("request id {request_id:?} was already used for a different report")]
    RequestReused { request_id: String },
    #[error("a request id has 1 to 64 characters")]
    BadRequestId,
    #[error("too many reports from this device; wait a minute")]
    RateLimited,
    /// A change to the office refused by the rule that decided it (the error is that rule's).
    #[error("{0}")]
    Refused(BoxError),
    #[error("cannot open the data folder {dir}: {reason}")]
    Open { dir: String, reason: String },
    #[error(
        "the data folder {dir} is damaged: {reason}. Refusing to use it: restore it from a backup (`hongfan restore`)"
    )]
    Corrupt { dir: String, reason: String },
    #[error("the store cannot read: {0}")]
    Read(String),
    #[error("the store cannot write: {0}")]
    Write(String),
    /// Another server of the pair holds the lease now (or appended after this one): this one
    /// acknowledges nothing more.
    #[error("this server no longer holds the lease: another server is the primary now")]
    LostLease,
    #[error("a lock was poisoned by a panic")]
    Poisoned,
    #[error("the store is closed")]
    Closed,
    /// This server follows the primary's log: it shows, and takes no writes.
    #[error("this server is a standby: it takes no writes until it takes over from the primary")]
    Standby,
}

impl StoreError {
    fn open(dir: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Open { dir: dir.display().to_string(), reason: e.to_string() }
    }
    fn corrupt(dir: &Path, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt { dir: dir.display().to_string(), reason: reason.into() }
    }
    fn read(e: impl std::fmt::Display) -> StoreError {
        StoreError::Read(e.to_string())
    }
}

/// The trees of account records. The store keeps them durable; the auth module decides what
/// they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aux {
    Users,
    Kiosks,
    Sessions,
    /// Webhook deliveries not yet taken by their receiver (`webhooks::Delivery`, by id).
    Outbox,
    /// The workers' own duty switches in force (`DutySwitch`, by login): kept, and replicated,
    /// so that a restart or a failover keeps who switched on or off by hand.
    Duty,
}

/// A worker's own duty switch, as kept: on or off, and what the rota said when they switched
/// (the switch lasts while the rota still says the same; `hub::roster`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DutySwitch {
    pub on: bool,
    pub scheduled: bool,
}

/// The durable state readers may see. Its collections share their structure between versions,
/// so a reader takes a copy in O(1) and lets go of the lock before it does any work: a long audit
/// never holds up the committer, which holds the lock only to swap in a durable group.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    /// The last durable event.
    seq: Seq,
    open: imbl::OrdMap<IncidentId, Arc<Incident>>,
    /// Every incident's audit facts, by id (index = id - 1): small enough to keep for years of
    /// reports, so the audit never scans the log.
    rows: imbl::Vector<Arc<AuditRow>>,
    /// Each community's incidents in the order reported there: ticket N is at index N - 1.
    tickets: imbl::HashMap<CommunityId, imbl::Vector<IncidentId>>,
    /// How the office runs now: people, kiosks, rotas, and the communities (with versions).
    office: Arc<OfficeNow>,
}

/// The office as its log has made it, with a version of each community.
#[derive(Debug)]
pub struct OfficeNow {
    pub office: Office,
    /// A short digest of each community: clients keep `/api/community` until theirs changes.
    versions: BTreeMap<CommunityId, String>,
}

impl OfficeNow {
    /// `before` lends the versions of the communities that did not change.
    fn new(office: Office, before: Option<&OfficeNow>) -> OfficeNow {
        let digest = |community: &Community| {
            use sha2::Digest;
            let json = serde_json::to_vec(community).unwrap_or_default();
            hex::encode(&sha2::Sha256::digest(&json)[..8])
        };
        let versions = office
            .communities
            .iter()
            .map(|(id, community)| {
                let kept = before
                    .and_then(|b| Some((b.office.communities.get(id)?, b.versions.get(id)?)))
                    .filter(|(old, _)| Arc::ptr_eq(old, community))
                    .map(|(_, version)| version.clone());
                (id.clone(), kept.unwrap_or_else(|| digest(community)))
            })
            .collect();
        OfficeNow { office, versions }
    }

    /// The version of a community (empty for one the office does not hold).
    pub fn version(&self, community: &CommunityId) -> &str {
        self.versions.get(community).map_or("", String::as_str)
    }

    /// The community `compound` belongs to.
    pub fn community_of(&self, compound: &CompoundId) -> Option<&Arc<Community>> {
        self.office.community_of(compound)
    }
}

/// Whether the store can still write. A failed write (a full or failing disk) is final for this
/// process: the committer stops, every request after it is refused, and whoever watches
/// `failed` (the server) shuts down so that a supervisor such as systemd restarts it.
#[derive(Debug, Default)]
pub struct Health {
    failure: OnceLock<String>,
    failed: CancellationToken,
}

impl Health {
    /// Stops this process's writing for good (the server then shuts down).
    pub(crate) fn fail(&self, reason: String) {
        let _ = self.failure.set(reason);
        self.failed.cancel();
    }

    /// Why the store stopped writing, once it has.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Cancelled when the store stops writing.
    pub fn failed(&self) -> &CancellationToken {
        &self.failed
    }
}

/// What the store's handles and its committer share.
#[derive(Debug)]
pub(crate) struct Shared {
    disk: Arc<Disk>,
    /// The communities a data folder starts with (the configuration file, or the built-in).
    seed: Arc<[Community]>,
    /// Whether the seed's communities a started folder lacks join it (`StoreOptions::join`).
    join: bool,
    clock: SharedClock,
    metrics: Arc<crate::metrics::Metrics>,
    duty: DutyOverrides,
    published: RwLock<Published>,
    commits: broadcast::Sender<Arc<Commit>>,
    health: Health,
    attachments: attachments::Attachments,
    webhooks: Arc<crate::webhooks::Webhooks>,
    /// How many requests the last group answered: a request commits itself only when they
    /// come one at a time (under load, groups are what make the disk keep up).
    last_group: std::sync::atomic::AtomicUsize,
    /// The committer, once this store writes (at open, or when a standby takes over).
    writer: OnceLock<Writer>,
    /// The committer's queue, until it runs (`None` once it does, and in a read-only store).
    queue: Mutex<Option<crossbeam_channel::Receiver<Command>>>,
    /// What a standby needs to apply the primary's groups (`None` once it writes itself).
    follower: Mutex<Option<replica::Follower>>,
    /// Whether this store follows a primary: read by every request (so an atomic, never the
    /// follower's lock, which is held across its disk writes).
    standby: std::sync::atomic::AtomicBool,
    /// Cancelled once the committer runs.
    primary: CancellationToken,
}

/// The running committer.
#[derive(Debug)]
struct Writer {
    /// Held by the committer's thread while it runs: once it stops, the committer (and its
    /// handle on what this `Shared` owns) goes with it.
    committer: std::sync::Weak<Mutex<Committer>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Whether each group goes to a replicated log first: the committer then waits on the
    /// network, so requests never commit on their own (async) threads.
    replicated: bool,
}

impl Shared {
    fn read(&self) -> Result<Published, StoreError> {
        // std's lock, held only to copy the handle (O(1)); never across an await.
        Ok(self.published.read().map_err(|_| StoreError::Poisoned)?.clone())
    }

    /// A write that failed: known as failed before anyone hears of it, and final for this
    /// process.
    fn fail_write(&self, e: &StoreError) {
        self.metrics.store_failed.set(1);
        if let StoreError::LostLease = e {
            // Not a fault of this machine: the pair's other server leads now.
            tracing::error!(
                "this server lost the lease to the other server of the pair; refusing further writes and stopping"
            );
            self.health.fail("the other server of the pair took the lease".to_owned());
            return;
        }
        let dir = self.disk.dir().display().to_string();
        tracing::error!(error = %e, %dir, "store write failed; refusing further writes");
        self.metrics.store_write_errors.inc();
        self.health.fail(format!("writing to {dir} failed: {e}"));
    }

    /// Makes a durable group readable: the new state of each incident it touched (`latest`
    /// lends the states already shared with its events), its audit rows and tickets, and the
    /// office when the group changed it. The last sequence number now published.
    fn show<'a>(
        &self,
        events: &[Event],
        touched: impl Iterator<Item = &'a Incident>,
        latest: &std::collections::HashMap<IncidentId, Arc<Incident>>,
        office: Option<&Office>,
    ) -> Result<Seq, StoreError> {
        let mut published = self.published.write().map_err(|_| StoreError::Poisoned)?;
        // A new incident's community is the office's as of this group.
        let before = published.office.clone();
        let owners = office.unwrap_or(&before.office);
        for incident in touched {
            let row = Arc::new(AuditRow::from(incident));
            match usize::try_from(incident.id.0 - 1) {
                Ok(index) if index < published.rows.len() => {
                    published.rows.set(index, row);
                }
                _ => {
                    published.rows.push_back(row);
                    // A new incident: the next ticket of its community.
                    if let Some(community) = owners.community_of(&incident.report.compound) {
                        let tickets = published.tickets.entry(community.id.clone()).or_default();
                        tickets.push_back(incident.id);
                    }
                }
            }
            if incident.status.is_open() {
                let state = match latest.get(&incident.id) {
                    Some(state) => state.clone(),
                    None => Arc::new(incident.clone()),
                };
                published.open.insert(incident.id, state);
            } else {
                published.open.remove(&incident.id);
            }
        }
        published.seq = events.last().map_or(published.seq, |e| e.seq);
        if let Some(office) = office {
            published.office = Arc::new(OfficeNow::new(office.clone(), Some(&published.office)));
        }
        self.metrics.events_appended.inc_by(events.len() as u64);
        let breaches =
            events.iter().filter(|e| matches!(e.change, hongfan_shared::Change::Breached { .. }));
        self.metrics.breaches.inc_by(breaches.count() as u64);
        Ok(published.seq)
    }

    /// Tells every subscriber of a durable group (none is fine: nobody is connected).
    fn broadcast(
        &self,
        events: Vec<Event>,
        states: Vec<(Option<Arc<Incident>>, Arc<Incident>)>,
        office: Vec<OfficeEvent>,
        deliveries: Vec<crate::webhooks::Delivery>,
        ended: Vec<Arc<[u8]>>,
    ) {
        if events.is_empty() && office.is_empty() && ended.is_empty() {
            return;
        }
        let changes = events
            .into_iter()
            .zip(states)
            .map(|(event, (before, after))| Committed { event, before, after })
            .collect();
        let _ = self.commits.send(Arc::new(Commit { changes, office, deliveries, ended }));
    }
}

/// One durable group of events, each with the state of its incident just before and just after
/// it (shared, not copied, with the published state).
#[derive(Debug)]
pub struct Commit {
    pub changes: Vec<Committed>,
    /// Changes to how the office runs, in the same group.
    pub office: Vec<OfficeEvent>,
    /// Webhook deliveries the group's events called for, in its outbox now.
    pub deliveries: Vec<crate::webhooks::Delivery>,
    /// On a standby, the sessions the primary ended in this group (a logout, a password
    /// reset, a revoked kiosk): their sockets close here too. (A primary's hub hears of its own
    /// from the accounts.)
    pub ended: Vec<Arc<[u8]>>,
}

/// One durable event and what it did to its incident.
#[derive(Debug, Clone)]
pub struct Committed {
    pub event: Event,
    /// `None` for the event that created the incident.
    pub before: Option<Arc<Incident>>,
    pub after: Arc<Incident>,
}

/// Any error, from a rule outside the store.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Decides one change to the office against the office as it is: the change, or why not.
pub type OfficeEdit = Box<dyn FnOnce(&Office) -> Result<OfficeChange, BoxError> + Send>;

/// Whether one more new report may be stored now; called once, by the committer.
pub type Admit = Box<dyn FnOnce() -> bool + Send>;

/// The answer to a report: the incident, and the event if this request created it (`None` when
/// the same request was already stored).
#[derive(Debug, Clone)]
pub struct Reported {
    pub incident: Incident,
    pub event: Option<Event>,
}

/// The open incidents as of one point in the log.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub seq: Seq,
    pub incidents: Vec<Incident>,
}

/// What an opened store does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mode {
    /// It writes: its committer runs, and what fell due while it was closed is recorded at once.
    #[default]
    Primary,
    /// It follows a primary's replicated log (`Store::apply_replicated`) and takes no writes
    /// (`StoreError::Standby`) until it takes over (`Store::promote`). A new folder takes
    /// `epoch`, the primary's, so that clients resume on it as on the primary.
    Standby { epoch: Option<String> },
    /// It looks only: no committer runs, nothing falls due, every write is refused as
    /// `Closed`. For checking a folder without changing what is checked.
    ReadOnly,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache.
    pub cache_bytes: u64,
    /// The workers' duty switches; the hub keeps them current. None, unless someone sets them.
    pub duty: DutyOverrides,
    pub mode: Mode,
    /// Failures to inject into writes, flushes and syncs (tests of the failure paths).
    pub faults: Option<Arc<Faults>>,
    /// The webhooks whose deliveries the committer writes into the outbox with their events.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// The seed's communities that a folder already started does not hold join it (a
    /// configuration file given to the server). Otherwise only a new folder takes the seed: a
    /// command run without the file must not add the built-in community to a district's.
    pub join: bool,
    /// The write-ahead log's size at which a checkpoint makes it a segment of the event log.
    pub segment_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 64 << 20,
            duty: DutyOverrides::default(),
            mode: Mode::Primary,
            faults: None,
            webhooks: Arc::default(),
            join: false,
            segment_bytes: disk::SEGMENT_BYTES,
        }
    }
}

/// The workers' own duty switches (a manual on or off that wins over the rota until the rota's
/// next change for them). The hub keeps it current; the committer reads it with the rota to
/// decide, in the same group as a report, whether anybody is on duty for it. A lock of its own,
/// so the committer never waits for the hub's.
#[derive(Debug, Clone, Default)]
pub struct DutyOverrides(Arc<RwLock<BTreeMap<String, bool>>>);

impl DutyOverrides {
    pub fn set(&self, overrides: BTreeMap<String, bool>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = overrides;
    }

    pub fn get(&self) -> BTreeMap<String, bool> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    tx: crossbeam_channel::Sender<Command>,
    shared: Arc<Shared>,
}

impl Store {
    /// Opens (or, when the folder is missing or empty, creates) the store in `dir`, and records
    /// every breach and escalation that fell due while it was closed before returning.
    pub fn open(
        dir: &Path,
        seed: Arc<[Community]>,
        clock: SharedClock,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let epoch = match &options.mode {
            Mode::Standby { epoch } => epoch.as_deref(),
            _ => None,
        };
        let (mut disk, loaded, rebuilt) =
            Disk::open_loaded(dir, options.cache_bytes, options.faults.clone(), epoch)?;
        disk.segment_bytes = options.segment_bytes;
        if let Some(reason) = rebuilt {
            tracing::warn!(%reason, "the store was rebuilt from its event log");
        }
        let disk = Arc::new(disk);
        let attachments = attachments::Attachments::open(dir)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        // Generous, since a receiver that still lags re-reads the log.
        let (commits, _) = broadcast::channel(1024);
        let mut office = Office::default();
        for event in &loaded.office {
            office.apply(event).map_err(|why| StoreError::corrupt(dir, why))?;
        }
        let mut tickets: imbl::HashMap<CommunityId, imbl::Vector<IncidentId>> = Default::default();
        for row in &loaded.rows {
            // A compound no community holds can only be one a folder from before there were
            // several communities (or before the office log) dropped: its incidents were the
            // default community's.
            let community = office.community_of(&row.compound).map(|c| c.id.clone());
            let community = community.unwrap_or_default();
            let numbers = tickets.entry(community).or_default();
            numbers.push_back(row.id);
            if row.ticket.number() != Some(numbers.len() as u64) {
                let why = format!(
                    "incident {} has ticket {}, not {}",
                    row.id.0,
                    row.ticket.0,
                    numbers.len()
                );
                return Err(StoreError::corrupt(dir, why));
            }
        }
        let published = Published {
            seq: loaded.last_seq,
            open: loaded.open.iter().map(|(id, i)| (*id, Arc::new(i.clone()))).collect(),
            rows: loaded.rows.iter().cloned().map(Arc::new).collect(),
            tickets,
            office: Arc::new(OfficeNow::new(office, None)),
        };
        let writes = options.mode != Mode::ReadOnly;
        let follower =
            matches!(options.mode, Mode::Standby { .. }).then(replica::Follower::default);
        let shared = Arc::new(Shared {
            disk,
            seed,
            clock,
            metrics: Arc::new(crate::metrics::Metrics::default()),
            duty: options.duty,
            published: RwLock::new(published),
            commits,
            health: Health::default(),
            attachments,
            webhooks: options.webhooks.clone(),
            join: options.join,
            last_group: Default::default(),
            writer: OnceLock::new(),
            queue: Mutex::new(writes.then_some(rx)),
            standby: follower.is_some().into(),
            follower: Mutex::new(follower),
            primary: CancellationToken::new(),
        });
        let store = Store { tx, shared };
        if options.mode == Mode::Primary {
            store.start_writing(None, Some(loaded))?;
        }
        Ok(store)
    }

    /// Starts the committer on what the folder holds now: records what fell due, then takes
    /// requests. Each group goes to `log` first, when there is one.
    /// `loaded` is what the open read, when nothing was applied since.
    fn start_writing(
        &self,
        log: Option<Arc<dyn Replicator>>,
        loaded: Option<disk::Loaded>,
    ) -> Result<(), StoreError> {
        let shared = &self.shared;
        let queue = shared.queue.lock().map_err(|_| StoreError::Poisoned)?.take();
        let Some(rx) = queue else { return Err(StoreError::Closed) };
        let loaded = match loaded {
            Some(loaded) => loaded,
            None => {
                let mut loaded = shared.disk.load_states()?;
                loaded.last_seq = shared.read()?.seq;
                loaded
            }
        };
        let replicated = log.is_some();
        // The switches kept (a restart, a takeover) are in force before the first report.
        let mut duty = shared.duty.get();
        duty.extend(self.duty_switches()?.into_iter().map(|(worker, s)| (worker, s.on)));
        shared.duty.set(duty);
        let mut committer = Committer::new(shared.clone(), loaded, (self.tx.clone(), rx), log);
        committer.catch_up()?;
        let committer = Arc::new(Mutex::new(committer));
        let running = committer.clone();
        let thread = std::thread::Builder::new()
            .name("hongfan-committer".into())
            .spawn(move || Committer::run(running))
            .map_err(|e| StoreError::open(shared.disk.dir(), e))?;
        let committer = Arc::downgrade(&committer);
        let writer = Writer { committer, thread: Mutex::new(Some(thread)), replicated };
        shared.writer.set(writer).map_err(|_| StoreError::Closed)?;
        shared.primary.cancel();
        Ok(())
    }

    pub fn epoch(&self) -> &str {
        &self.shared.disk.epoch
    }

    pub fn dir(&self) -> &Path {
        self.shared.disk.dir()
    }

    /// The incident a community's ticket number names.
    pub fn find_ticket(&self, community: &CommunityId, number: u64) -> Option<IncidentId> {
        let published = self.shared.published.read().ok()?;
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        published.tickets.get(community)?.get(index).copied()
    }

    /// How the office runs now.
    pub fn office(&self) -> Arc<OfficeNow> {
        self.shared
            .published
            .read()
            .map_or_else(|p| p.into_inner().office.clone(), |p| p.office.clone())
    }

    /// Where the hub publishes the workers' duty switches.
    pub fn duty(&self) -> &DutyOverrides {
        &self.shared.duty
    }

    /// The counters `/metrics` reports; the hub and connections bump theirs here too.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.shared.metrics
    }

    /// The photos and voice notes reports name.
    pub fn attachments(&self) -> &attachments::Attachments {
        &self.shared.attachments
    }

    /// Whether the store can still write, and why not once it cannot.
    pub fn health(&self) -> &Health {
        &self.shared.health
    }

    /// Open incidents per compound, now.
    pub fn open_by_compound(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let published = self.read()?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for c in self.office().office.communities.values().flat_map(|c| &c.compounds) {
            counts.insert(c.id.0.clone(), 0);
        }
        for incident in published.open.values() {
            *counts.entry(incident.report.compound.0.clone()).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    /// The time on the store's clock.
    pub fn now(&self) -> hongfan_shared::Timestamp {
        self.shared.clock.now()
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(committer::Reply<T>) -> Command,
    ) -> Result<T, StoreError> {
        let Some(writer) = self.shared.writer.get() else {
            return Err(if self.is_standby() { StoreError::Standby } else { StoreError::Closed });
        };
        let (reply, answer) = oneshot::channel();
        let command = command(reply);
        // Requests coming one at a time and the committer's lock free: committed here, without
        // a hand-off. (The shutdown is sent to the committer's thread, which it stops.)
        let alone = self.shared.last_group.load(std::sync::atomic::Ordering::Relaxed) <= 1
            && !writer.replicated
            && !matches!(command, Command::Shutdown { .. });
        let committer = writer.committer.upgrade().filter(|_| alone);
        let queued = match committer.as_ref().map(|c| c.try_lock()) {
            Some(Ok(mut committer)) => committer.commit_now(command),
            // A commit panicked: nothing more is committed, the queue closes.
            Some(Err(std::sync::TryLockError::Poisoned(poisoned))) => {
                poisoned.into_inner().stop();
                return Err(StoreError::Closed);
            }
            _ => Some(command),
        };
        if let Some(command) = queued {
            self.tx.send(command).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores a new report, answered once it is durable. The same `request_id` from the same
    /// actor returns the incident it created and writes nothing.
    pub async fn report(
        &self,
        who: &Principal,
        request_id: &str,
        report: Report,
    ) -> Result<Reported, StoreError> {
        self.report_if(who, request_id, report, Box::new(|| true)).await
    }

    /// `report`, asking `admit` (a rate limit) only when the report is new and valid, so that a
    /// resend or a refusal costs the device nothing.
    pub async fn report_if(
        &self,
        who: &Principal,
        request_id: &str,
        report: Report,
        admit: Admit,
    ) -> Result<Reported, StoreError> {
        let (who, request_id) = (who.clone(), request_id.to_owned());
        self.ask(|reply| Command::Report { who, request_id, report, admit, reply }).await
    }

    /// Applies a lifecycle action, answered with the event and the new state once durable.
    pub async fn act(
        &self,
        who: &Principal,
        id: IncidentId,
        action: Action,
    ) -> Result<(Event, Incident), StoreError> {
        let who = who.clone();
        self.ask(|reply| Command::Act { who, id, action, reply }).await
    }

    /// Writes one account record durably (`None` removes it).
    pub async fn put(
        &self,
        tree: Aux,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let key = key.to_vec();
        self.ask(|reply| Command::Put { tree, key, value, reply }).await
    }

    /// Every record of one account tree, in key order (a sled read: at start, or off the
    /// async workers).
    pub fn scan(&self, tree: Aux) -> Result<Vec<Vec<u8>>, StoreError> {
        self.shared.disk.scan(tree)
    }

    /// One account record (a sled read, as `scan`).
    pub fn get(&self, tree: Aux, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared.disk.get(tree, key)
    }

    /// Every record of one account tree with its key, in key order (a sled read, as `scan`).
    pub fn scan_entries(&self, tree: Aux) -> Result<Vec<Entry>, StoreError> {
        self.shared.disk.scan_entries(tree)
    }

    /// The workers' duty switches kept (a sled read, as `scan`); one that does not decode is
    /// left out, with a warning.
    pub fn duty_switches(&self) -> Result<BTreeMap<String, DutySwitch>, StoreError> {
        let mut switches = BTreeMap::new();
        for (key, value) in self.scan_entries(Aux::Duty)? {
            let worker = String::from_utf8_lossy(&key).into_owned();
            match serde_json::from_slice(&value) {
                Ok(switch) => drop(switches.insert(worker, switch)),
                Err(e) => tracing::warn!(%worker, error = %e, "a duty switch does not decode"),
            }
        }
        Ok(switches)
    }

    /// Keeps a worker's duty switch (`None`: they follow the rota again).
    pub async fn keep_duty(
        &self,
        worker: &str,
        switch: Option<DutySwitch>,
    ) -> Result<(), StoreError> {
        let value = switch.map(|s| serde_json::to_vec(&s)).transpose();
        let value = value.map_err(|e| StoreError::Write(e.to_string()))?;
        self.put(Aux::Duty, worker.as_bytes(), value).await
    }

    /// Every change to the office, oldest first (read from the office's log).
    pub fn office_history(&self) -> Result<Vec<OfficeEvent>, StoreError> {
        Ok(self.shared.disk.read_office()?.0)
    }

    /// Changes how the office runs, answered with the logged event once it is durable. `edit`
    /// runs on the committer, against the office as it is then.
    pub async fn change_office(
        &self,
        actor: &Actor,
        edit: OfficeEdit,
    ) -> Result<OfficeEvent, StoreError> {
        let actor = actor.clone();
        self.ask(|reply| Command::Office { actor, edit, reply }).await
    }

    /// Records every breach due by the clock's current time; returns how many were recorded.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        self.ask(|reply| Command::Tick { reply }).await
    }

    /// The durable state of one incident.
    pub async fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        if let Some(incident) = self.read()?.open.get(&id) {
            return Ok(Some(Incident::clone(incident)));
        }
        if self.shared.writer.get().is_none() {
            let disk = self.shared.disk.clone();
            return blocking(move || disk.incident(id)).await;
        }
        // A closed incident is read by the committer, so that a change still being written is
        // never seen before it is durable.
        self.ask(|reply| Command::Get { id, reply }).await
    }

    /// Many incidents at once, each with when its last event was recorded, for readers that
    /// should not queue behind the writes (Open311's public lists): read from the folder on a
    /// blocking thread, the open ones from memory; only one changed since the last durable
    /// group is asked of the committer. Unknown ids are left out.
    pub async fn incidents_with_times(
        &self,
        ids: Vec<IncidentId>,
    ) -> Result<Vec<(Incident, hongfan_shared::Timestamp)>, StoreError> {
        let published = self.read()?;
        let (seq, open) = (published.seq, published.open.clone());
        let disk = self.shared.disk.clone();
        let read = blocking(move || {
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                let incident = match open.get(&id) {
                    Some(incident) => Some(Incident::clone(incident)),
                    None => disk.incident(id)?,
                };
                let Some(incident) = incident else { continue };
                // Written by the group being applied, not durable yet: the committer's to say.
                if incident.last_seq > seq {
                    found.push(Err(id));
                    continue;
                }
                let at = disk.event(incident.last_seq)?.map_or(incident.reported_at, |e| e.at);
                found.push(Ok((incident, at)));
            }
            Ok(found)
        })
        .await?;
        let mut incidents = Vec::with_capacity(read.len());
        for one in read {
            match one {
                Ok(found) => incidents.push(found),
                Err(id) => {
                    if let Some(incident) = self.incident(id).await? {
                        let at = self.events_after(incident.last_seq.saturating_sub(1), 1).await?;
                        let at = at.first().map_or(incident.reported_at, |e| e.at);
                        incidents.push((incident, at));
                    }
                }
            }
        }
        Ok(incidents)
    }

    /// The open incidents and the sequence number they are current as of.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let published = self.read()?;
        let incidents = published.open.values().map(|i| Incident::clone(i)).collect();
        Ok(Snapshot { seq: published.seq, incidents })
    }

    /// The last durable sequence number.
    pub fn last_seq(&self) -> Result<Seq, StoreError> {
        Ok(self.read()?.seq)
    }

    /// Durable events after `after`, oldest first, at most `limit`. Read from sled on a
    /// blocking thread, so a client catching up never stalls an async worker.
    pub async fn events_after(&self, after: Seq, limit: usize) -> Result<Vec<Event>, StoreError> {
        let store = self.clone();
        blocking(move || store.events_after_blocking(after, limit)).await
    }

    /// `events_after`, on the calling thread (tools and tests).
    pub fn events_after_blocking(
        &self,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let upto = self.last_seq()?;
        self.shared.disk.events(after, upto, limit)
    }

    /// The audit summary for a query, as of now (or the end of the period). `label` names a
    /// compound, category or worker by its id. Computed on a copy of the rows: the committer is
    /// never held up by it.
    pub fn audit(
        &self,
        query: &AuditQuery,
        label: impl Fn(&str, &str) -> String,
    ) -> Result<Summary, StoreError> {
        let now = self.now();
        let rows = self.read()?.rows;
        Ok(hongfan_shared::audit::summarize(rows.iter().map(|r| &**r), query, now, label))
    }

    /// The audit facts of the incidents a query counts, oldest first.
    pub fn audit_rows(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let rows = self.read()?.rows;
        Ok(rows.iter().filter(|r| query.matches(r)).map(|r| AuditRow::clone(r)).collect())
    }

    /// One incident and every event of it, oldest first (read from the log on a blocking
    /// thread).
    pub async fn timeline(
        &self,
        id: IncidentId,
    ) -> Result<Option<(Incident, Vec<Event>)>, StoreError> {
        let Some(incident) = self.incident(id).await? else { return Ok(None) };
        let disk = self.shared.disk.clone();
        // A group being applied may already be in sled: only what is durable and published.
        let upto = self.last_seq()?;
        blocking(move || {
            let seqs: Vec<Seq> = disk.timeline(id)?.into_iter().filter(|&s| s <= upto).collect();
            let mut events = Vec::with_capacity(seqs.len());
            for seq in seqs {
                events.push(
                    disk.event(seq)?
                        .ok_or_else(|| StoreError::Read(format!("event {seq} is missing")))?,
                );
            }
            Ok(Some((incident, events)))
        })
        .await
    }

    /// Every durable group of events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Commit>> {
        self.shared.commits.subscribe()
    }

    /// Writes what is waiting, stops the committer and waits for it (a standby makes what it
    /// applied durable in sled).
    pub async fn close(&self) -> Result<(), StoreError> {
        let Some(writer) = self.shared.writer.get() else {
            let store = self.clone();
            return blocking(move || store.stop_following()).await;
        };
        let sent = self.ask(|reply| Command::Shutdown { reply }).await;
        let handle = writer.thread.lock().map_err(|_| StoreError::Poisoned)?.take();
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|_| StoreError::Closed)?
                .map_err(|_| StoreError::Write("the committer panicked".into()))?;
        }
        match sent {
            Ok(()) | Err(StoreError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn read(&self) -> Result<Published, StoreError> {
        self.shared.read()
    }
}

/// Runs a sled read on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(read).await.map_err(|e| StoreError::Read(e.to_string()))?
}
