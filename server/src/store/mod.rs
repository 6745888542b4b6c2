//! The store: the event log and incident state in sled, written by one committer thread.
//!
//! `Store` is a cheap-to-clone handle. Writes go to the committer over a channel and are answered
//! once durable; reads of open incidents come from the published state, which holds only what
//! is durable. Every durable group of events is also broadcast as a `Commit`.

pub mod backup;
mod committer;
mod deadlines;
mod disk;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};

use hongfan_shared::audit::{AuditQuery, AuditRow, Summary};
use hongfan_shared::{
    Action, Community, Event, Incident, IncidentId, LifecycleError, Principal, Report, Seq,
};
use tokio::sync::{broadcast, oneshot};

use crate::clock::SharedClock;
use committer::{Command, Committer};
use disk::Disk;

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
    #[error("a lock was poisoned by a panic")]
    Poisoned,
    #[error("the store is closed")]
    Closed,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aux {
    Users,
    Kiosks,
    Sessions,
}

/// The durable state readers may see.
#[derive(Debug)]
pub(crate) struct Published {
    /// The last durable event.
    seq: Seq,
    open: BTreeMap<IncidentId, Incident>,
    /// Every incident's audit facts, by id (index = id - 1): small enough to keep for years of
    /// reports, so the audit never scans the log.
    rows: Vec<AuditRow>,
}

/// One durable group of events and the new state of every incident they changed.
#[derive(Debug)]
pub struct Commit {
    pub events: Vec<Event>,
    pub incidents: Vec<Incident>,
}

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

#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// sled's page cache.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { cache_bytes: 64 << 20 }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<Command>,
    disk: Arc<Disk>,
    published: Arc<RwLock<Published>>,
    commits: broadcast::Sender<Arc<Commit>>,
    community: Arc<Community>,
    clock: SharedClock,
    metrics: Arc<crate::metrics::Metrics>,
    committer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Store {
    /// Opens (or, when the folder is missing or empty, creates) the store in `dir`, and records
    /// every breach that fell due while it was closed before returning.
    pub fn open(
        dir: &Path,
        community: Arc<Community>,
        clock: SharedClock,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let disk = Arc::new(Disk::open(dir, options.cache_bytes)?);
        let loaded = disk.load()?;
        let (tx, rx) = mpsc::channel();
        // Generous, since a receiver that still lags re-reads the log.
        let (commits, _) = broadcast::channel(1024);
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let mut committer = Committer::new(
            disk.clone(),
            loaded,
            community.clone(),
            clock.clone(),
            commits.clone(),
            rx,
            metrics.clone(),
        );
        committer.catch_up()?;
        let published = committer.published.clone();
        let handle = std::thread::Builder::new()
            .name("hongfan-committer".into())
            .spawn(move || committer.run())
            .map_err(|e| StoreError::open(dir, e))?;
        Ok(Store {
            tx,
            disk,
            published,
            commits,
            community,
            clock,
            metrics,
            committer: Arc::new(Mutex::new(Some(handle))),
        })
    }

    pub fn epoch(&self) -> &str {
        &self.disk.epoch
    }

    pub fn dir(&self) -> &Path {
        self.disk.dir()
    }

    pub fn community(&self) -> &Arc<Community> {
        &self.community
    }

    /// The counters `/metrics` reports; the hub and connections bump theirs here too.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// Open incidents per compound, now.
    pub fn open_by_compound(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let published = self.read()?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for c in &self.community.compounds {
            counts.insert(c.id.0.clone(), 0);
        }
        for incident in published.open.values() {
            *counts.entry(incident.report.compound.0.clone()).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    /// The time on the store's clock.
    pub fn now(&self) -> hongfan_shared::Timestamp {
        self.clock.now()
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(committer::Reply<T>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(command(reply)).map_err(|_| StoreError::Closed)?;
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
        let (who, request_id) = (who.clone(), request_id.to_owned());
        self.ask(|reply| Command::Report { who, request_id, report, reply }).await
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

    /// Records that nobody of the incident's compound was on duty for it (once; `None` when it
    /// already was, or was claimed meanwhile).
    pub async fn escalate(&self, id: IncidentId) -> Result<Option<(Event, Incident)>, StoreError> {
        self.ask(|reply| Command::Escalate { id, reply }).await
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

    pub fn get(&self, tree: Aux, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.disk.get(tree, key)
    }

    /// Every record of one account tree, in key order.
    pub fn scan(&self, tree: Aux) -> Result<Vec<Vec<u8>>, StoreError> {
        self.disk.scan(tree)
    }

    /// Records every breach due by the clock's current time; returns how many were recorded.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        self.ask(|reply| Command::Tick { reply }).await
    }

    /// The durable state of one incident.
    pub async fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        if let Some(incident) = self.read()?.open.get(&id) {
            return Ok(Some(incident.clone()));
        }
        // A closed incident is read by the committer, so that a change still being written is
        // never seen before it is durable.
        self.ask(|reply| Command::Get { id, reply }).await
    }

    /// The open incidents and the sequence number they are current as of.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let published = self.read()?;
        Ok(Snapshot { seq: published.seq, incidents: published.open.values().cloned().collect() })
    }

    /// The last durable sequence number.
    pub fn last_seq(&self) -> Result<Seq, StoreError> {
        Ok(self.read()?.seq)
    }

    /// Durable events after `after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: Seq, limit: usize) -> Result<Vec<Event>, StoreError> {
        let upto = self.last_seq()?;
        self.disk.events(after, upto, limit)
    }

    /// The audit summary for a query, as of now (or the end of the period). `label` names a
    /// compound, category or worker by its id.
    pub fn audit(
        &self,
        query: &AuditQuery,
        label: impl Fn(&str, &str) -> String,
    ) -> Result<Summary, StoreError> {
        let now = self.clock.now();
        Ok(hongfan_shared::audit::summarize(&self.read()?.rows, query, now, label))
    }

    /// The audit facts of the incidents a query counts, oldest first.
    pub fn audit_rows(&self, query: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        Ok(self.read()?.rows.iter().filter(|r| query.matches(r)).cloned().collect())
    }

    /// One incident and every event of it, oldest first.
    pub async fn timeline(
        &self,
        id: IncidentId,
    ) -> Result<Option<(Incident, Vec<Event>)>, StoreError> {
        let Some(incident) = self.incident(id).await? else { return Ok(None) };
        let mut events = Vec::with_capacity(incident.events.len());
        for &seq in &incident.events {
            events.push(
                self.disk
                    .event(seq)?
                    .ok_or_else(|| StoreError::Read(format!("event {seq} is missing")))?,
            );
        }
        Ok(Some((incident, events)))
    }

    /// Every durable group of events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Commit>> {
        self.commits.subscribe()
    }

    /// Writes what is waiting, stops the committer and waits for it.
    pub async fn close(&self) -> Result<(), StoreError> {
        let sent = self.ask(|reply| Command::Shutdown { reply }).await;
        let handle = self.committer.lock().map_err(|_| StoreError::Poisoned)?.take();
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

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Published>, StoreError> {
        // std's lock: no reader holds it across an await, and the committer holds it only to
        // swap in a durable group.
        self.published.read().map_err(|_| StoreError::Poisoned)
    }
}
