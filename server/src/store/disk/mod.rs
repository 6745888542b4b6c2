//! The sled layout. Only this file knows how records are keyed and encoded.
//!
//! Trees: `events` (seq → event), `incidents` (id → current state), `meta` (epoch, format, and
//! with a standby the position in the replicated log of the last group written), and
//! the account records `users`, `kiosks` and `sessions`, whose encoding the auth module owns, and
//! `outbox`, the webhook deliveries not yet taken by their receiver, and `duty`, the workers' own
//! duty switches.
//! Integer keys are big-endian so that sled's byte order is numeric order. Nothing that can be
//! derived at start is written per report: the next sequence number and incident id come from
//! the last keys, the request-id index and the deadline index from the incidents.

pub(super) mod log;
mod migrations;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hongfan_shared::audit::AuditRow;
use hongfan_shared::office::OfficeEvent;
use hongfan_shared::{Event, Incident, IncidentId, Seq};

use super::wal::{Op, Wal};
use super::{Aux, StoreError};

/// Trees as the write-ahead log names them.
const EVENTS: u8 = 1;
const INCIDENTS: u8 = 2;
const TIMELINE: u8 = 3;
const USERS: u8 = 4;
const KIOSKS: u8 = 5;
const SESSIONS: u8 = 6;
const OFFICE: u8 = 7;
const OUTBOX: u8 = 8;
const META: u8 = 9;
const DUTY: u8 = 10;
/// The `meta` key of the replicated log's position of the last group written.
const POSITION: &[u8] = b"position";

/// The format of the data folder: events framed with a checksum chain.
const FORMAT: &[u8] = b"hongfan-2";
/// The high-water mark's file, beside sled's.
pub(super) const MARK_FILE: &str = "hongfan.mark";

/// Where a write can be made to fail, to test what a failing disk does to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Writing the group into sled.
    Write,
    /// sled's flush of its buffers to the file.
    Flush,
    /// The fdatasync that makes the flushed file durable.
    Fsync,
}

/// Failures to inject: once a point is set to fail, every operation there fails until healed.
#[derive(Debug, Default)]
pub struct Faults {
    write: AtomicBool,
    flush: AtomicBool,
    fsync: AtomicBool,
}

impl Faults {
    fn flag(&self, at: FaultPoint) -> &AtomicBool {
        match at {
            FaultPoint::Write => &self.write,
            FaultPoint::Flush => &self.flush,
            FaultPoint::Fsync => &self.fsync,
        }
    }

    pub fn fail(&self, at: FaultPoint) {
        self.flag(at).store(true, Ordering::SeqCst);
    }

    pub fn heal(&self, at: FaultPoint) {
        self.flag(at).store(false, Ordering::SeqCst);
    }

    fn check(&self, at: FaultPoint) -> std::io::Result<()> {
        if self.flag(at).load(Ordering::SeqCst) {
            Err(std::io::Error::other(format!("injected {at:?} failure")))
        } else {
            Ok(())
        }
    }
}

/// The checksum chain over the log. Each stored event is `[crc32, big-endian][JSON]`, the
/// crc taken over the JSON starting from the previous event's crc; so an event that was changed
/// or lost anywhere in the log breaks the chain there, and start-up and `verify` name it even
/// when sled itself read the file without complaint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Chain {
    /// The last event the chain has taken in.
    pub seq: Seq,
    sum: u32,
}

impl Chain {
    /// Takes in the next event's JSON and gives the value to store.
    fn frame(&mut self, seq: Seq, json: &[u8]) -> Vec<u8> {
        let mut hasher = crc32fast::Hasher::new_with_initial(self.sum);
        hasher.update(json);
        *self = Chain { seq, sum: hasher.finalize() };
        let mut stored = Vec::with_capacity(4 + json.len());
        stored.extend_from_slice(&self.sum.to_be_bytes());
        stored.extend_from_slice(json);
        stored
    }

    /// Takes in a stored event and gives its JSON, or what is wrong with it.
    pub(super) fn check<'a>(&mut self, seq: Seq, stored: &'a [u8]) -> Result<&'a [u8], String> {
        if seq != self.seq + 1 {
            return Err(format!("event {} is missing (the next stored is {seq})", self.seq + 1));
        }
        let json = unframe(stored)
            .ok_or_else(|| format!("event {seq} is damaged: it is too short to be an event"))?;
        let mut hasher = crc32fast::Hasher::new_with_initial(self.sum);
        hasher.update(json);
        let sum = hasher.finalize();
        if stored[..4] != sum.to_be_bytes() {
            return Err(format!(
                "event {seq} is damaged: its checksum does not follow from the events before it"
            ));
        }
        *self = Chain { seq, sum };
        Ok(json)
    }
}

impl Chain {
    /// Goes on from a stored event as it is, after a problem with it was reported, so that one
    /// damaged event is not reported again for every event after it.
    pub(super) fn resume_after(&mut self, seq: Seq, stored: &[u8]) {
        let sum = stored.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
        *self = Chain { seq, sum: sum.unwrap_or(0) };
    }
}

/// A stored event's JSON, without its checksum.
pub(super) fn unframe(stored: &[u8]) -> Option<&[u8]> {
    stored.get(4..).filter(|json| !json.is_empty())
}

/// One account record to write (or with `None`, remove) with a group's events.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuxWrite {
    pub tree: Aux,
    #[serde(with = "super::replica::base64_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "super::replica::base64_bytes::option")]
    pub value: Option<Vec<u8>>,
}

#[derive(Debug)]
pub(super) struct Disk {
    meta: sled::Tree,
    dir: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    incidents: sled::Tree,
    /// (incident, seq) → nothing: each incident's events, so a timeline reads no more than them.
    timeline: sled::Tree,
    /// The office's own log: seq → chained, framed `OfficeEvent`.
    office: sled::Tree,
    users: sled::Tree,
    kiosks: sled::Tree,
    sessions: sled::Tree,
    outbox: sled::Tree,
    duty: sled::Tree,
    /// sled's own log file; `flush` only calls sync_file_range, so we fsync it ourselves.
    log_file: File,
    /// The high-water mark: a sequence number known durable, kept outside sled. sled recovers
    /// from a damaged log by cutting it short, silently; a log that ends before the mark is
    /// refused instead.
    mark: File,
    pub(super) epoch: String,
    faults: Option<Arc<Faults>>,
    /// The chain up to the last event written; only the committer moves it on.
    chain: std::sync::Mutex<Chain>,
    /// The office log's chain, likewise.
    office_chain: std::sync::Mutex<Chain>,
    /// Where each group is made durable before it is applied to sled.
    wal: std::sync::Mutex<Wal>,
    /// The write-ahead log's size at which a checkpoint retires it into the event log.
    pub(super) segment_bytes: u64,
    /// The number the next segment of the event log takes.
    next_segment: std::sync::atomic::AtomicU64,
}

/// The write-ahead log's size at which it becomes a segment of the event log: a start applies
/// at most this much again.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// How a data folder is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opening {
    /// As it is.
    AsItIs,
    /// sled's files set aside and sled rebuilt from the event log.
    Rebuild,
}

/// What start-up reads back from disk.
#[derive(Debug)]
pub(super) struct Loaded {
    pub last_seq: Seq,
    /// The office's log, oldest first.
    pub office: Vec<OfficeEvent>,
    pub next_id: u64,
    pub open: BTreeMap<IncidentId, Incident>,
    pub requests: HashMap<(String, String), IncidentId>,
    /// Every incident's audit facts, by id (index = id - 1).
    pub rows: Vec<AuditRow>,
    /// The closed incident with the latest event (with the open ones, it bounds what the states
    /// claim of the log).
    pub closed_last: Option<Incident>,
}

/// A record's key and value, as stored.
pub type Entry = (Vec<u8>, Vec<u8>);

fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn timeline_key(incident: u64, seq: Seq) -> [u8; 16] {
    let mut k = [0; 16];
    k[..8].copy_from_slice(&incident.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn number(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

impl Disk {
    /// Opens the data folder, creating it only when it is missing or empty. A new folder takes
    /// `epoch` when given (a standby's, the replicated log's), a random one otherwise.
    pub(super) fn open(
        dir: &Path,
        cache_bytes: u64,
        faults: Option<Arc<Faults>>,
        epoch: Option<&str>,
        opening: Opening,
    ) -> Result<Disk, StoreError> {
        let fresh = match std::fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(StoreError::open(dir, e)),
        };
        let history = log::Log::read(dir).map_err(|e| StoreError::open(dir, e))?;
        if opening == Opening::Rebuild {
            if history.base.is_none() {
                return Err(StoreError::corrupt(dir, "it has no event log to rebuild sled from"));
            }
            // The log is read whole before sled is touched: a damaged log leaves sled as it is.
            history.replay(|_, _| Ok(())).map_err(|why| StoreError::corrupt(dir, why))?;
            let marker = dir.join(log::LOG_DIR).join(log::REBUILDING);
            if marker.exists() {
                // What is there is an earlier rebuild that did not finish: nothing to keep.
                remove_sled(dir).map_err(|e| StoreError::open(dir, e))?;
            } else {
                crate::durable::write(&marker, b"").map_err(|e| StoreError::open(dir, e))?;
                set_aside(dir).map_err(|e| StoreError::open(dir, e))?;
            }
        } else if fresh {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::open(dir, e))?;
        } else if !dir.join("db").is_file() || !dir.join("conf").is_file() {
            return Err(StoreError::corrupt(dir, "sled's files `db` and `conf` are missing"));
        }
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // The committer is the only one who flushes: sled's background flusher would race it.
            .flush_every_ms(None);
        // sled 0.34 panics on some damaged files instead of returning an error. Nothing of the
        // half-opened database is used after a panic, so unwind safety does not matter here.
        let db = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open()))
            .map_err(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                StoreError::corrupt(dir, format!("sled cannot read its files ({why})"))
            })?
            .map_err(|e| match e {
                sled::Error::Corruption { .. } => {
                    StoreError::corrupt(dir, format!("sled found its files corrupted ({e})"))
                }
                e => StoreError::open(dir, e),
            })?;
        // sled writes its `conf` when it finds none (or an empty one) and never fsyncs it: made
        // durable here, so a power cut does not leave it empty for the next start.
        File::open(dir.join("conf"))
            .and_then(|conf| conf.sync_all())
            .map_err(|e| StoreError::open(dir, e))?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| sled_at_open(dir, e));
        let (meta, events, incidents) = (tree("meta")?, tree("events")?, tree("incidents")?);
        let timeline = tree("timeline")?;
        let office = tree("office")?;
        let (users, kiosks, sessions) = (tree("users")?, tree("kiosks")?, tree("sessions")?);
        let (outbox, duty) = (tree("outbox")?, tree("duty")?);
        if opening == Opening::Rebuild {
            let trees = [
                (META, &meta),
                (EVENTS, &events),
                (INCIDENTS, &incidents),
                (TIMELINE, &timeline),
                (OFFICE, &office),
                (USERS, &users),
                (KIOSKS, &kiosks),
                (SESSIONS, &sessions),
                (OUTBOX, &outbox),
                (DUTY, &duty),
            ];
            let started = std::time::Instant::now();
            let mut applied = 0usize;
            history
                .replay(|file, groups| {
                    tracing::info!(file = %file.display(), groups = groups.len(), applied, "rebuilding sled from the event log");
                    for ops in &groups {
                        for op in ops {
                            let tree = trees
                                .iter()
                                .find(|(code, _)| *code == op.tree)
                                .map(|(_, tree)| *tree)
                                .ok_or_else(|| format!("the log names an unknown tree {}", op.tree))?;
                            match &op.value {
                                Some(value) => tree.insert(op.key.as_slice(), value.as_slice()).map(drop),
                                None => tree.remove(op.key.as_slice()).map(drop),
                            }
                            .map_err(|e| e.to_string())?;
                        }
                    }
                    applied += groups.len();
                    Ok(())
                })
                .map_err(|why| StoreError::corrupt(dir, why))?;
            tracing::info!(
                groups = applied,
                ms = started.elapsed().as_millis() as u64,
                "sled rebuilt from the event log; now its last records"
            );
        }
        let (wal, replay) = Wal::open(dir).map_err(|e| match e {
            super::wal::WalError::Io(e) => StoreError::open(dir, e),
            damaged => StoreError::corrupt(dir, format!("its write-ahead log: {damaged}")),
        })?;
        restrict(dir).map_err(|e| StoreError::open(dir, e))?;
        let log_file = File::open(dir.join("db")).map_err(|e| StoreError::open(dir, e))?;
        let mark = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(MARK_FILE))
            .map_err(|e| StoreError::open(dir, e))?;

        let mut upgrade = false;
        let epoch = if fresh {
            let epoch =
                epoch.map_or_else(|| format!("{:032x}", rand::random::<u128>()), str::to_owned);
            meta.insert("format", FORMAT).map_err(|e| sled_at_open(dir, e))?;
            meta.insert("epoch", epoch.as_bytes()).map_err(|e| sled_at_open(dir, e))?;
            epoch
        } else {
            let format = meta.get("format").map_err(|e| sled_at_open(dir, e))?;
            match format.as_deref() {
                Some(f) if f == FORMAT => {}
                Some(f) if f == migrations::FORMAT_1 => upgrade = true,
                _ => {
                    return Err(StoreError::corrupt(
                        dir,
                        "it is not a hongfan database (no format mark)",
                    ));
                }
            }
            let epoch = meta.get("epoch").map_err(|e| sled_at_open(dir, e))?;
            epoch
                .and_then(|e| String::from_utf8(e.to_vec()).ok())
                .ok_or_else(|| StoreError::corrupt(dir, "the store epoch is missing"))?
        };
        let disk = Disk {
            meta: meta.clone(),
            dir: dir.to_owned(),
            db,
            events,
            incidents,
            timeline,
            office,
            users,
            kiosks,
            sessions,
            outbox,
            duty,
            log_file,
            mark,
            epoch,
            faults,
            chain: std::sync::Mutex::new(Chain::default()),
            office_chain: std::sync::Mutex::new(Chain::default()),
            wal: std::sync::Mutex::new(wal),
            segment_bytes: SEGMENT_BYTES,
            next_segment: std::sync::atomic::AtomicU64::new(history.next()),
        };
        if upgrade {
            disk.upgrade(&meta)?;
        }
        // What was durable in the write-ahead log but perhaps not yet in sled goes in again.
        if !replay.is_empty() {
            tracing::info!(groups = replay.len(), "applying the write-ahead log");
            for ops in &replay {
                disk.apply(ops).map_err(|e| StoreError::corrupt(dir, e.to_string()))?;
            }
            disk.checkpoint().map_err(|e| io_at_open(dir, e))?;
        }
        if opening == Opening::Rebuild {
            // The rebuilt sled is durable before the marker goes: a crash before then rebuilds
            // again at the next start.
            disk.sync().map_err(|e| io_at_open(dir, e))?;
            let marker = dir.join(log::LOG_DIR).join(log::REBUILDING);
            std::fs::remove_file(&marker).map_err(|e| StoreError::open(dir, e))?;
            crate::durable::sync_dir(&dir.join(log::LOG_DIR))
                .map_err(|e| StoreError::open(dir, e))?;
        }
        if fresh {
            // The new store's epoch and format mark are durable before anything else is written,
            // and so are the new files' names in the folder, and the folder's in its parent.
            disk.sync().map_err(|e| io_at_open(dir, e))?;
            crate::durable::sync_dir(dir).map_err(|e| StoreError::open(dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::durable::sync_dir(parent).map_err(|e| StoreError::open(dir, e))?;
            }
        }
        Ok(disk)
    }

    /// Starts the event log again from sled's trees as they are now (a new folder, an older
    /// one, a restored backup): sled made durable, its trees written as the new base, and the
    /// segments before it removed.
    pub(super) fn rebase(&self) -> std::io::Result<()> {
        let mut wal = self.wal.lock().map_err(|_| std::io::Error::other("a lock was poisoned"))?;
        self.sync()?;
        wal.checkpointed();
        if wal.generation() == 0 {
            // A log of the first format is emptied first: sled holds its writes now.
            wal.clear()?;
        }
        let n = log::Log::read(&self.dir)?.next();
        log::write_base(&self.dir, n, self.dump())?;
        self.next_segment.store(n, std::sync::atomic::Ordering::SeqCst);
        log::note_generation(&self.dir, wal.generation())
    }

    /// Whether the event log goes on where the write-ahead log begins: the generation the log
    /// last noted is the write-ahead log's (an older version empties it by a new generation,
    /// without retiring it into the event log).
    fn log_follows_wal(&self) -> bool {
        let generation = self.wal.lock().map_or(0, |wal| wal.generation());
        log::noted_generation(&self.dir) == Some(generation)
    }

    /// Every tree's records, as writes of the write-ahead log, a megabyte or so at a time.
    fn dump(&self) -> impl Iterator<Item = std::io::Result<Vec<Op>>> + '_ {
        let trees = [
            (META, &self.meta),
            (EVENTS, &self.events),
            (INCIDENTS, &self.incidents),
            (TIMELINE, &self.timeline),
            (OFFICE, &self.office),
            (USERS, &self.users),
            (KIOSKS, &self.kiosks),
            (SESSIONS, &self.sessions),
            (OUTBOX, &self.outbox),
            (DUTY, &self.duty),
        ];
        trees.into_iter().flat_map(|(code, tree)| {
            let mut entries = tree.iter();
            std::iter::from_fn(move || {
                let (mut chunk, mut bytes) = (Vec::new(), 0);
                for entry in entries.by_ref() {
                    let (key, value) = match entry {
                        Ok(kv) => kv,
                        Err(e) => return Some(Err(std::io::Error::other(e))),
                    };
                    bytes += key.len() + value.len();
                    chunk.push(Op { tree: code, key: key.to_vec(), value: Some(value.to_vec()) });
                    if bytes > 1 << 20 {
                        break;
                    }
                }
                (!chunk.is_empty()).then_some(Ok(chunk))
            })
        })
    }

    /// Opens the data folder and reads it back (`load`). When sled's files are damaged — sled
    /// refuses them or panics on them, or what it holds is not whole or ends before the log —
    /// and the folder has its event log, sled is rebuilt from the log and the folder opened
    /// again; the reason it was rebuilt is returned with it.
    pub(super) fn open_loaded(
        dir: &Path,
        cache_bytes: u64,
        faults: Option<Arc<Faults>>,
        epoch: Option<&str>,
    ) -> Result<(Disk, Loaded, Option<String>), StoreError> {
        let attempt = |opening| {
            let faults = faults.clone();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let disk = Disk::open(dir, cache_bytes, faults, epoch, opening)?;
                // A read that fails while the folder is read back is damage too.
                let loaded = disk.load().map_err(|e| match e {
                    StoreError::Read(why) => StoreError::corrupt(dir, why),
                    e => e,
                })?;
                // A folder without an event log (new, or written before there was one)
                // starts it with what sled holds, once that has been read back whole; so does
                // one whose write-ahead log another version emptied (its writes are in sled
                // only).
                let history = log::Log::read(dir).map_err(|e| StoreError::open(dir, e))?;
                if history.base.is_none() {
                    tracing::info!("starting the event log with what the store holds");
                    disk.rebase().map_err(|e| io_at_open(dir, e))?;
                } else if !disk.log_follows_wal() {
                    tracing::warn!("the write-ahead log was emptied without the event log (an older version ran): starting the event log again with what the store holds");
                    disk.rebase().map_err(|e| io_at_open(dir, e))?;
                }
                Ok((disk, loaded))
            }))
            .unwrap_or_else(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(StoreError::corrupt(dir, format!("sled failed reading its files ({why})")))
            })
        };
        if dir.join(log::LOG_DIR).join(log::REBUILDING).exists() {
            tracing::warn!("a rebuild of the store did not finish: rebuilding it again");
            let (disk, loaded) = attempt(Opening::Rebuild)?;
            return Ok((disk, loaded, Some("a rebuild did not finish".into())));
        }
        match attempt(Opening::AsItIs) {
            Ok((disk, loaded)) => Ok((disk, loaded, None)),
            Err(StoreError::Corrupt { reason, .. })
                if log::Log::read(dir).is_ok_and(|log| log.base.is_some()) =>
            {
                tracing::warn!(%reason, "the store's files are damaged: rebuilding them from the event log");
                let (disk, loaded) = attempt(Opening::Rebuild)?;
                Ok((disk, loaded, Some(reason)))
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The whole log against its checksum chain; the chain's end and the last event stored.
    fn check_chain(&self) -> Result<(Chain, Option<sled::IVec>), StoreError> {
        let corrupt = |reason: String| StoreError::corrupt(&self.dir, reason);
        let mut chain = Chain::default();
        let mut last = None;
        for entry in self.events.iter() {
            let (k, v) = entry.map_err(|e| corrupt(e.to_string()))?;
            let seq = number(&k).ok_or_else(|| corrupt("an event key is not a number".into()))?;
            chain.check(seq, &v).map_err(&corrupt)?;
            last = Some(v);
        }
        Ok((chain, last))
    }

    /// The office's log, checked against its own chain, which further office events continue.
    pub(super) fn office_log(&self) -> Result<Vec<OfficeEvent>, StoreError> {
        let (log, chain) = self.read_office()?;
        *self.office_chain.lock().map_err(|_| StoreError::Poisoned)? = chain;
        Ok(log)
    }

    /// The office's log as it is now, checked against its chain (for reading only).
    pub(super) fn read_office(&self) -> Result<(Vec<OfficeEvent>, Chain), StoreError> {
        let corrupt = |reason: String| StoreError::corrupt(&self.dir, reason);
        let mut chain = Chain::default();
        let mut log = Vec::new();
        for entry in self.office.iter() {
            let (k, v) = entry.map_err(|e| corrupt(e.to_string()))?;
            let seq = number(&k).ok_or_else(|| corrupt("an office key is not a number".into()))?;
            let json =
                chain.check(seq, &v).map_err(|why| corrupt(format!("the office log: {why}")))?;
            let event: OfficeEvent = serde_json::from_slice(json)
                .map_err(|e| corrupt(format!("office event {seq} does not decode: {e}")))?;
            log.push(event);
        }
        Ok((log, chain))
    }

    /// The office's log as stored, for `verify`: each entry's seq and bytes.
    pub(super) fn raw_office(
        &self,
    ) -> impl Iterator<Item = Result<(u64, sled::IVec), String>> + '_ {
        self.office
            .iter()
            .map(|e| e.map(|(k, v)| (number(&k).unwrap_or(0), v)).map_err(|e| e.to_string()))
    }

    /// Appends restored office events (the committer is not running), continuing their chain.
    pub(super) fn import_office(&self, events: &[OfficeEvent]) -> Result<(), StoreError> {
        let mut chain = self.office_chain.lock().map_err(|_| StoreError::Poisoned)?;
        let mut batch = sled::Batch::default();
        for event in events {
            let bytes = serde_json::to_vec(event).map_err(|e| StoreError::Write(e.to_string()))?;
            batch.insert(&key(event.seq), chain.frame(event.seq, &bytes));
        }
        self.office.apply_batch(batch).map_err(|e| StoreError::Write(e.to_string()))
    }

    /// Every incident state: the open ones, the audit rows, the request index.
    pub(super) fn load_states(&self) -> Result<Loaded, StoreError> {
        let corrupt = |reason: String| StoreError::corrupt(&self.dir, reason);
        let mut loaded = Loaded {
            last_seq: 0,
            next_id: 1,
            open: BTreeMap::new(),
            requests: HashMap::new(),
            rows: Vec::new(),
            closed_last: None,
            office: Vec::new(),
        };
        for entry in self.incidents.iter() {
            let (k, v) = entry.map_err(|e| corrupt(e.to_string()))?;
            let incident: Incident = serde_json::from_slice(&v)
                .map_err(|e| corrupt(format!("incident {:?} does not decode: {e}", number(&k))))?;
            if number(&k) != Some(incident.id.0) {
                return Err(corrupt(format!(
                    "incident {} is stored under another key",
                    incident.id.0
                )));
            }
            if incident.last_seq == 0 {
                return Err(corrupt(format!("incident {} records no event", incident.id.0)));
            }
            if incident.id.0 != loaded.next_id {
                return Err(corrupt(format!(
                    "incident {} is missing (the next stored is {})",
                    loaded.next_id, incident.id.0
                )));
            }
            loaded.next_id = incident.id.0 + 1;
            loaded.rows.push(AuditRow::from(&incident));
            let request = (incident.reported_by.id.clone(), incident.request_id.clone());
            loaded.requests.insert(request, incident.id);
            if incident.status.is_open() {
                loaded.open.insert(incident.id, incident);
            } else if loaded.closed_last.as_ref().is_none_or(|c| c.last_seq < incident.last_seq) {
                loaded.closed_last = Some(incident);
            }
        }
        Ok(loaded)
    }

    /// Reads the state back and checks it: the whole log against its checksum chain (naming the
    /// first event changed or missing), and the incident states against the end of the log.
    pub(super) fn load(&self) -> Result<Loaded, StoreError> {
        let corrupt = |reason: String| StoreError::corrupt(&self.dir, reason);
        // The whole log's chain is checked on a thread of its own while this one reads the
        // incident states: the two halves of a start take about as long as each other.
        let started = std::time::Instant::now();
        let (checked, states) = std::thread::scope(|scope| {
            let checking = scope.spawn(|| self.check_chain());
            let states = self.load_states();
            (checking.join(), states)
        });
        let (chain, last) = checked.map_err(|_| corrupt("the log check failed".into()))??;
        let mut loaded = states?;
        loaded.office = self.office_log()?;
        tracing::info!(
            events = chain.seq,
            incidents = loaded.next_id - 1,
            ms = started.elapsed().as_millis() as u64,
            "store loaded"
        );
        let last_event = match (chain.seq, last) {
            (0, _) | (_, None) => None,
            (seq, Some(stored)) => {
                let json = unframe(&stored).unwrap_or_default();
                let event: Event = serde_json::from_slice(json)
                    .map_err(|e| corrupt(format!("the last event does not decode: {e}")))?;
                if event.seq != seq {
                    return Err(corrupt(format!("event {} is stored under key {seq}", event.seq)));
                }
                Some(event)
            }
        };
        *self.chain.lock().map_err(|_| StoreError::Poisoned)? = chain;
        let last_seq = last_event.as_ref().map_or(0, |e| e.seq);
        let marked = self.read_mark();
        if marked > last_seq {
            return Err(corrupt(format!(
                "the log ends at event {last_seq}, but event {marked} was stored before: sled lost part of its log"
            )));
        }
        for incident in loaded.open.values().chain(loaded.closed_last.iter()) {
            if incident.last_seq > last_seq {
                return Err(corrupt(format!(
                    "incident {} records events the log does not have",
                    incident.id.0
                )));
            }
        }
        loaded.last_seq = last_seq;
        if let Some(event) = last_event {
            let state = self.incident(event.incident)?;
            if state.as_ref().map(|s| s.last_seq) != Some(event.seq) {
                return Err(corrupt(format!(
                    "the last event ({}) is not reflected in incident {}'s state",
                    event.seq, event.incident.0
                )));
            }
        }
        Ok(loaded)
    }

    pub(super) fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        let Some(bytes) = self.incidents.get(key(id.0)).map_err(StoreError::read)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(StoreError::read)
    }

    pub(super) fn event(&self, seq: Seq) -> Result<Option<Event>, StoreError> {
        let Some(bytes) = self.events.get(key(seq)).map_err(StoreError::read)? else {
            return Ok(None);
        };
        decode_event(&bytes).map(Some)
    }

    /// The sequence numbers of one incident's events, oldest first.
    pub(super) fn timeline(&self, id: IncidentId) -> Result<Vec<Seq>, StoreError> {
        self.timeline
            .scan_prefix(key(id.0))
            .keys()
            .map(|k| {
                let k = k.map_err(StoreError::read)?;
                number(&k[8..]).ok_or_else(|| StoreError::Read("a bad timeline key".into()))
            })
            .collect()
    }

    /// Events with `after < seq <= upto`, oldest first, at most `limit`.
    /// The last event in sled (0 with none): each group's events are written before its
    /// position, so read after the position it is at least that group's last.
    pub(super) fn last_event(&self) -> Result<Seq, StoreError> {
        let last = self.events.last().map_err(StoreError::read)?;
        Ok(last.and_then(|(k, _)| number(&k)).unwrap_or(0))
    }

    pub(super) fn events(
        &self,
        after: Seq,
        upto: Seq,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if after >= upto {
            return Ok(Vec::new());
        }
        self.events
            .range(key(after + 1)..=key(upto))
            .take(limit)
            .map(|entry| {
                let (_, v) = entry.map_err(StoreError::read)?;
                decode_event(&v)
            })
            .collect()
    }

    /// Makes a group of events, the incident states they produce and the account records written
    /// with them durable, all or none, in the write-ahead log. The writes are returned to be
    /// applied to sled (`apply`) — which may happen after the group's answers have gone out.
    pub(super) fn commit(
        &self,
        events: &[Event],
        incidents: &[&Incident],
        office: &[OfficeEvent],
        aux: &[AuxWrite],
        position: Option<u64>,
    ) -> Result<Vec<Op>, StoreError> {
        let encode =
            |r: Result<Vec<u8>, serde_json::Error>| r.map_err(|e| StoreError::Write(e.to_string()));
        let mut chain = *self.chain.lock().map_err(|_| StoreError::Poisoned)?;
        let indexed: Vec<[u8; 16]> =
            events.iter().map(|e| timeline_key(e.incident.0, e.seq)).collect();
        let events: Vec<([u8; 8], Vec<u8>)> = events
            .iter()
            .map(|e| Ok((key(e.seq), chain.frame(e.seq, &encode(serde_json::to_vec(e))?))))
            .collect::<Result<_, StoreError>>()?;
        let incidents: Vec<([u8; 8], Vec<u8>)> = incidents
            .iter()
            .map(|i| Ok((key(i.id.0), encode(serde_json::to_vec(i))?)))
            .collect::<Result<_, StoreError>>()?;
        let mut ops = Vec::with_capacity(events.len() * 2 + incidents.len() + aux.len());
        for ((k, v), index) in events.into_iter().zip(indexed) {
            ops.push(Op { tree: EVENTS, key: k.to_vec(), value: Some(v) });
            ops.push(Op { tree: TIMELINE, key: index.to_vec(), value: Some(Vec::new()) });
        }
        for (k, v) in incidents {
            ops.push(Op { tree: INCIDENTS, key: k.to_vec(), value: Some(v) });
        }
        let mut office_chain = *self.office_chain.lock().map_err(|_| StoreError::Poisoned)?;
        for event in office {
            let json = encode(serde_json::to_vec(event))?;
            let framed = office_chain.frame(event.seq, &json);
            ops.push(Op { tree: OFFICE, key: key(event.seq).to_vec(), value: Some(framed) });
        }
        for write in aux {
            let tree = match write.tree {
                Aux::Users => USERS,
                Aux::Kiosks => KIOSKS,
                Aux::Sessions => SESSIONS,
                Aux::Outbox => OUTBOX,
                Aux::Duty => DUTY,
            };
            ops.push(Op { tree, key: write.key.clone(), value: write.value.clone() });
        }
        if let Some(position) = position {
            let value = Some(key(position).to_vec());
            ops.push(Op { tree: META, key: POSITION.to_vec(), value });
        }
        // Durable first, in one write and one sync; then into sled, which writes it out later.
        {
            let mut wal = self.wal.lock().map_err(|_| StoreError::Poisoned)?;
            self.fault(FaultPoint::Write)?;
            wal.write(&ops).map_err(|e| StoreError::Write(e.to_string()))?;
            self.fault(FaultPoint::Fsync)?;
            wal.sync().map_err(|e| StoreError::Write(e.to_string()))?;
        }
        *self.chain.lock().map_err(|_| StoreError::Poisoned)? = chain;
        *self.office_chain.lock().map_err(|_| StoreError::Poisoned)? = office_chain;
        Ok(ops)
    }

    /// Puts a group's writes into sled. Not as one sled transaction: that makes sled write and
    /// wait on the disk twice per group, and the write-ahead log already makes the group durable
    /// and whole — after a crash, whatever part of it sled kept, the log puts in again. Applying
    /// the same group twice leaves the same state.
    pub(super) fn apply(&self, ops: &[Op]) -> Result<(), StoreError> {
        for op in ops {
            let tree = match op.tree {
                EVENTS => &self.events,
                INCIDENTS => &self.incidents,
                TIMELINE => &self.timeline,
                USERS => &self.users,
                KIOSKS => &self.kiosks,
                OFFICE => &self.office,
                OUTBOX => &self.outbox,
                META => &self.meta,
                DUTY => &self.duty,
                _ => &self.sessions,
            };
            match &op.value {
                Some(value) => tree.insert(op.key.as_slice(), value.as_slice()).map(drop),
                None => tree.remove(op.key.as_slice()).map(drop),
            }
            .map_err(sled_error)?;
        }
        Ok(())
    }

    /// The replicated log's position of the last group written (0 before the first).
    pub(super) fn position(&self) -> Result<u64, StoreError> {
        let stored = self.meta.get(POSITION).map_err(StoreError::read)?;
        Ok(stored.and_then(|v| number(&v)).unwrap_or(0))
    }

    /// Whether the write-ahead log has grown enough since the last checkpoint to be worth one
    /// now.
    pub(super) fn wal_len(&self) -> u64 {
        self.wal.lock().map_or(0, |wal| wal.pending())
    }

    /// Makes everything applied to sled durable there; a write-ahead log grown large then
    /// becomes the event log's next segment, and a new one begins.
    pub(super) fn checkpoint(&self) -> std::io::Result<()> {
        let mut wal = self.wal.lock().map_err(|_| std::io::Error::other("a lock was poisoned"))?;
        if wal.pending() == 0 {
            return Ok(());
        }
        self.sync()?;
        wal.checkpointed();
        if wal.generation() == 0 {
            // A log of the first format, applied at start: emptied, since it cannot be written.
            // What it held is in sled, from which the event log begins (`rebase`).
            return wal.clear();
        }
        if wal.len() >= self.segment_bytes {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.next_segment.load(SeqCst);
            wal.retire(&log::segment(&self.dir, n))?;
            self.next_segment.store(n + 1, SeqCst);
            log::note_generation(&self.dir, wal.generation())?;
        }
        Ok(())
    }

    fn fault(&self, at: FaultPoint) -> Result<(), StoreError> {
        match &self.faults {
            Some(faults) => faults.check(at).map_err(|e| StoreError::Write(e.to_string())),
            None => Ok(()),
        }
    }

    fn aux(&self, tree: Aux) -> &sled::Tree {
        match tree {
            Aux::Users => &self.users,
            Aux::Kiosks => &self.kiosks,
            Aux::Sessions => &self.sessions,
            Aux::Outbox => &self.outbox,
            Aux::Duty => &self.duty,
        }
    }

    /// One account record, as stored.
    pub(super) fn get(&self, tree: Aux, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.aux(tree).get(key).map_err(StoreError::read)?.map(|v| v.to_vec()))
    }

    /// Writes one account record; the committer's next flush makes it durable.
    pub(super) fn put(
        &self,
        tree: Aux,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tree = self.aux(tree);
        match value {
            Some(value) => tree.insert(key, value).map(drop),
            None => tree.remove(key).map(drop),
        }
        .map_err(|e| StoreError::Write(e.to_string()))
    }

    /// Every record of one tree, in key order.
    pub(super) fn scan(&self, tree: Aux) -> Result<Vec<Vec<u8>>, StoreError> {
        self.aux(tree)
            .iter()
            .values()
            .map(|value| value.map(|v| v.to_vec()).map_err(StoreError::read))
            .collect()
    }

    /// Every record of one tree with its key.
    pub(super) fn scan_entries(&self, tree: Aux) -> Result<Vec<Entry>, StoreError> {
        let entries = self.aux(tree).iter();
        entries
            .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(StoreError::read))
            .collect()
    }

    /// Appends restored events (the committer is not running), continuing the chain.
    pub(super) fn import_events(&self, events: &[Event]) -> Result<(), StoreError> {
        let mut chain = self.chain.lock().map_err(|_| StoreError::Poisoned)?;
        let mut batch = sled::Batch::default();
        let mut index = sled::Batch::default();
        for event in events {
            let bytes = serde_json::to_vec(event).map_err(|e| StoreError::Write(e.to_string()))?;
            batch.insert(&key(event.seq), chain.frame(event.seq, &bytes));
            index.insert(&timeline_key(event.incident.0, event.seq), &[]);
        }
        self.events.apply_batch(batch).map_err(|e| StoreError::Write(e.to_string()))?;
        self.timeline.apply_batch(index).map_err(|e| StoreError::Write(e.to_string()))
    }

    /// The log as stored, key by key, for `verify`.
    pub(super) fn raw_events(
        &self,
    ) -> impl Iterator<Item = Result<(u64, sled::IVec), String>> + '_ {
        self.events
            .iter()
            .map(|e| e.map(|(k, v)| (number(&k).unwrap_or(0), v)).map_err(|e| e.to_string()))
    }

    pub(super) fn raw_incidents(
        &self,
    ) -> impl Iterator<Item = Result<(u64, sled::IVec), String>> + '_ {
        self.incidents
            .iter()
            .map(|e| e.map(|(k, v)| (number(&k).unwrap_or(0), v)).map_err(|e| e.to_string()))
    }

    /// The high-water mark, 0 when there is none.
    pub(super) fn read_mark(&self) -> Seq {
        use std::io::Read;
        let mut text = String::new();
        let _ = (&self.mark).read_to_string(&mut text);
        text.trim().parse().unwrap_or(0)
    }

    /// Records `seq` as durable; called only after it is.
    pub(super) fn write_mark(&self, seq: Seq) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.mark.write_all_at(format!("{seq:020}\n").as_bytes(), 0)?;
        self.mark.sync_data()
    }

    /// sled's flush writes its buffers with sync_file_range, which survives a killed process but
    /// not a power cut; the fdatasync after it makes the write durable.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        let fault = |at| self.fault(at).map_err(std::io::Error::other);
        fault(FaultPoint::Flush)?;
        self.db.flush().map_err(std::io::Error::other)?;
        fault(FaultPoint::Fsync)?;
        self.log_file.sync_data()
    }
}

fn decode_event(stored: &[u8]) -> Result<Event, StoreError> {
    let json = unframe(stored).ok_or_else(|| StoreError::Read("an event is too short".into()))?;
    serde_json::from_slice(json).map_err(StoreError::read)
}

/// The folder and its files hold phone numbers and password hashes: readable by the account that
/// runs the server only (0700 and 0600), also when an older version made them readable by more.
/// Removes sled's files (an unfinished rebuild's).
fn remove_sled(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if matches!(name.as_ref(), "db" | "conf") || name.starts_with("snap.") {
            std::fs::remove_file(entry.path())?;
        } else if name == "blobs" {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    crate::durable::sync_dir(dir)
}

/// Moves sled's files out of the way of a rebuild, into `damaged-<time>` in the folder (kept
/// for whoever wants to look at them; nothing reads them again).
fn set_aside(dir: &Path) -> std::io::Result<()> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = (0..)
        .map(|n| {
            dir.join(if n == 0 { format!("damaged-{secs}") } else { format!("damaged-{secs}-{n}") })
        })
        .find(|path| !path.exists())
        .unwrap_or_else(|| dir.join("damaged"));
    std::fs::create_dir_all(&aside)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if matches!(name.as_ref(), "db" | "conf" | "blobs") || name.starts_with("snap.") {
            std::fs::rename(entry.path(), aside.join(name.as_ref()))?;
        }
    }
    crate::durable::sync_dir(dir)?;
    tracing::warn!(aside = %aside.display(), "sled's files set aside, to be rebuilt from the event log");
    Ok(())
}

fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let mode = if entry.file_type()?.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// A failed sled write: sled's own files damaged (found while it read them to make the change)
/// is a read, anything else a write.
/// A sled error while a folder is opened: its files damaged (anything but the system's own
/// input and output failing) is damage, which a rebuild from the event log mends.
fn sled_at_open(dir: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(e) => StoreError::open(dir, e),
        e => StoreError::corrupt(dir, format!("sled cannot read its files ({e})")),
    }
}

/// An input or output error while a folder is opened: one that carries sled's finding of
/// damage is damage, like `sled_at_open`.
fn io_at_open(dir: &Path, e: std::io::Error) -> StoreError {
    let damaged = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<sled::Error>())
        .is_some_and(|inner| !matches!(inner, sled::Error::Io(_)));
    if damaged {
        StoreError::corrupt(dir, format!("sled cannot read its files ({e})"))
    } else {
        StoreError::open(dir, e)
    }
}

fn sled_error(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { .. } | sled::Error::ReportableBug(_) => {
            StoreError::Read(format!("sled cannot read its files: {e}"))
        }
        e => StoreError::Write(e.to_string()),
    }
}
