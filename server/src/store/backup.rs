//! Backup, restore and verify.
//!
//! A backup is the log up to one sequence number, the office's log (people, kiosks, rotas, the
//! community, every change to them), the session records and the attachments (photos and voice
//! notes, base64), as JSON lines. It
//! needs no pause in writing: events are never changed, so reading them up to the last durable
//! sequence number gives a consistent cut while reports keep arriving, and the incident states
//! are not copied but rebuilt from the log on restore. `verify` replays the log the same way and
//! compares.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use base64::Engine;
use std::path::Path;

use hongfan_shared::office::{Office, OfficeEvent};
use hongfan_shared::{Event, Incident, IncidentId, Seq};
use serde::{Deserialize, Serialize};

use super::disk::{Chain, Disk, Opening, unframe};
use super::{Aux, Store, StoreError};

/// 2 added the office's log; a version 1 file (accounts as records) is still restored, and its
/// accounts move into the office's log when the restored folder is first opened. 3 added the
/// attachments; a version 2 file has none.
const VERSION: u32 = 3;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    hongfan_backup: u32,
    epoch: String,
    seq: Seq,
    /// In a standby pair's snapshot, the replicated log's position it was read at: everything
    /// up to it is in the file (and possibly some of what follows).
    #[serde(default, skip_serializing_if = "is_zero")]
    position: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    tree: String,
    key: String,
    value: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct End {
    events: u64,
    records: u64,
    #[serde(default)]
    office: u64,
    #[serde(default)]
    attachments: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// The SHA-256 of the bytes, which is also the file's name.
    id: String,
    base64: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Event(Event),
    Office(OfficeEvent),
    Record(Record),
    Attachment(Stored),
    End(End),
}

/// What a backup or restore carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    pub seq: Seq,
    /// A snapshot's position in the replicated log (0 in a backup).
    pub position: u64,
    pub events: u64,
    /// Changes to the office.
    pub office: u64,
    pub records: u64,
    pub incidents: u64,
    pub attachments: u64,
}

/// The account records a backup carries; a snapshot carries the outbox too (the webhooks the
/// standby must send if it takes over), which a restored folder must not send again.
const AUX: [(Aux, &str); 5] = [
    (Aux::Users, "users"),
    (Aux::Kiosks, "kiosks"),
    (Aux::Sessions, "sessions"),
    (Aux::Duty, "duty"),
    (Aux::Outbox, "outbox"),
];
const BACKUP_AUX: usize = 4;

/// What a backup file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// To restore as a new deployment (`hongfan restore`).
    Backup,
    /// To seed a standby's empty folder: the same deployment, at a position of its log.
    Snapshot,
}

fn write_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Write(format!("backup: {e}"))
}

impl Store {
    /// Writes a consistent backup of everything durable now to `out`.
    pub fn backup(&self, out: &mut impl Write) -> Result<Carried, StoreError> {
        self.write_backup(out, Purpose::Backup)
    }

    /// Writes what a standby starting from nothing needs (`seed`): a backup that also names
    /// the replicated log's position it was read at, with the outbox.
    pub fn standby_snapshot(&self, out: &mut impl Write) -> Result<Carried, StoreError> {
        self.write_backup(out, Purpose::Snapshot)
    }

    fn write_backup(&self, out: &mut impl Write, purpose: Purpose) -> Result<Carried, StoreError> {
        // The position first, and everything else from the disk after it: then the file holds
        // at least every group up to it (the events shown in memory may lag what the disk
        // holds, so a snapshot reads where they end from the disk).
        let (position, seq) = match purpose {
            Purpose::Backup => (0, self.last_seq()?),
            Purpose::Snapshot => {
                let position = self.position()?;
                (position, self.shared.disk.last_event()?)
            }
        };
        let header =
            Header { hongfan_backup: VERSION, epoch: self.epoch().to_owned(), seq, position };
        serde_json::to_writer(&mut *out, &header).map_err(write_err)?;
        out.write_all(b"\n").map_err(write_err)?;
        let mut events = 0;
        let mut after = 0;
        loop {
            let chunk = self.shared.disk.events(after, seq, 10_000)?;
            let Some(last) = chunk.last().map(|e| e.seq) else { break };
            for event in chunk {
                serde_json::to_writer(&mut *out, &Line::Event(event)).map_err(write_err)?;
                out.write_all(b"\n").map_err(write_err)?;
                events += 1;
            }
            after = last;
        }
        let (office, _) = self.shared.disk.read_office()?;
        for event in &office {
            serde_json::to_writer(&mut *out, &Line::Office(event.clone())).map_err(write_err)?;
            out.write_all(b"\n").map_err(write_err)?;
        }
        let office = office.len() as u64;
        let mut records = 0;
        let trees = match purpose {
            Purpose::Backup => &AUX[..BACKUP_AUX],
            Purpose::Snapshot => &AUX[..],
        };
        for &(tree, name) in trees {
            for (key, value) in self.shared.disk.scan_entries(tree)? {
                let value =
                    serde_json::from_slice(&value).map_err(|e| StoreError::Read(e.to_string()))?;
                let record = Record { tree: name.into(), key: hex::encode(key), value };
                serde_json::to_writer(&mut *out, &Line::Record(record)).map_err(write_err)?;
                out.write_all(b"\n").map_err(write_err)?;
                records += 1;
            }
        }
        // Files are never changed or removed, so the ones there now include every one the
        // events up to `seq` name.
        let mut attachments = 0;
        for id in self.attachments().ids()? {
            let Some(bytes) = self.attachments().get(&id)? else { continue };
            let base64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            serde_json::to_writer(&mut *out, &Line::Attachment(Stored { id, base64 }))
                .map_err(write_err)?;
            out.write_all(b"\n").map_err(write_err)?;
            attachments += 1;
        }
        let end = Line::End(End { events, records, office, attachments });
        serde_json::to_writer(&mut *out, &end).map_err(write_err)?;
        out.write_all(b"\n").map_err(write_err)?;
        out.flush().map_err(write_err)?;
        let incidents = self.read()?.rows.len() as u64;
        Ok(Carried { seq, position, events, office, records, incidents, attachments })
    }
}

/// Folds events, in order, into incident states; says what does not fit.
#[derive(Debug, Default)]
struct Replay {
    incidents: BTreeMap<IncidentId, Incident>,
    next_seq: Seq,
}

impl Replay {
    fn apply(&mut self, event: &Event) -> Result<(), String> {
        if event.seq != self.next_seq + 1 {
            return Err(format!(
                "event {} follows event {}: the log has a gap",
                event.seq, self.next_seq
            ));
        }
        self.next_seq = event.seq;
        match self.incidents.get_mut(&event.incident) {
            Some(incident) => incident.apply(event).map_err(|e| e.to_string()),
            None => {
                let incident = Incident::from_event(event).map_err(|e| e.to_string())?;
                self.incidents.insert(event.incident, incident);
                Ok(())
            }
        }
    }
}

/// Restores a backup into `dir`, which must be missing or empty. The restored store has a new
/// epoch, so every client takes a fresh snapshot rather than resume into another history.
pub fn restore(input: impl BufRead, dir: &Path) -> Result<Carried, StoreError> {
    read_into(input, dir, Purpose::Backup)
}

/// Puts a standby pair's snapshot (`Store::standby_snapshot`) into `dir`, which must be missing or
/// empty: the same deployment (its epoch), holding the replicated log up to the snapshot's
/// position, to follow the log from there.
pub fn seed(input: impl BufRead, dir: &Path) -> Result<Carried, StoreError> {
    read_into(input, dir, Purpose::Snapshot)
}

fn read_into(input: impl BufRead, dir: &Path, purpose: Purpose) -> Result<Carried, StoreError> {
    let bad = |line: usize, why: String| StoreError::Corrupt {
        dir: "the backup file".into(),
        reason: format!("line {line}: {why}"),
    };
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(StoreError::Open {
            dir: dir.display().to_string(),
            reason: "it is not empty: restore only into a new folder".into(),
        });
    }
    let mut lines = input.lines();
    let header: Header = match lines.next() {
        Some(Ok(text)) => {
            serde_json::from_str(&text).map_err(|e| bad(1, format!("not a hongfan backup: {e}")))?
        }
        _ => return Err(bad(1, "the file is empty".into())),
    };
    if !(1..=VERSION).contains(&header.hongfan_backup) {
        return Err(bad(
            1,
            format!("backup version {} is newer than {VERSION}", header.hongfan_backup),
        ));
    }
    let (epoch, position) = match purpose {
        Purpose::Backup => (None, None),
        Purpose::Snapshot if header.position > 0 => {
            (Some(header.epoch.as_str()), Some(header.position))
        }
        Purpose::Snapshot => return Err(bad(1, "not a standby's snapshot".into())),
    };
    let disk = Disk::open(dir, 64 << 20, None, epoch, Opening::AsItIs)?;
    let files = super::attachments::Attachments::open(dir)?;
    let mut attachments = 0;
    let mut replay = Replay::default();
    let mut batch = Vec::new();
    let mut records = Vec::new();
    let mut office = Office::default();
    let mut office_events = Vec::new();
    let mut end = None;
    let mut skipped_records = 0;
    for (n, line) in lines.enumerate() {
        let number = n + 2;
        let text = line.map_err(|e| bad(number, e.to_string()))?;
        match serde_json::from_str::<Line>(&text).map_err(|e| bad(number, e.to_string()))? {
            Line::Event(event) => {
                replay.apply(&event).map_err(|why| bad(number, why))?;
                batch.push(event);
                if batch.len() == 10_000 {
                    disk.import_events(&batch)?;
                    batch.clear();
                }
            }
            Line::Office(event) => {
                office.apply(&event).map_err(|why| bad(number, why))?;
                office_events.push(event);
            }
            // A snapshot's outbox, restored as a backup: those webhooks were the other
            // deployment's to send.
            Line::Record(record) if purpose == Purpose::Backup && record.tree == "outbox" => {
                skipped_records += 1;
            }
            Line::Record(record) => {
                let tree = AUX
                    .iter()
                    .find(|(_, name)| *name == record.tree)
                    .map(|(tree, _)| *tree)
                    .ok_or_else(|| bad(number, format!("unknown tree {:?}", record.tree)))?;
                let key = hex::decode(&record.key).map_err(|e| bad(number, e.to_string()))?;
                let value =
                    serde_json::to_vec(&record.value).map_err(|e| bad(number, e.to_string()))?;
                records.push((tree, key, value));
            }
            Line::Attachment(stored) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&stored.base64)
                    .map_err(|e| bad(number, e.to_string()))?;
                if files.put(&bytes)? != stored.id {
                    return Err(bad(number, format!("attachment {} is damaged", stored.id)));
                }
                attachments += 1;
            }
            Line::End(e) => {
                end = Some((number, e));
                break;
            }
        }
    }
    let Some((number, end)) = end else {
        return Err(bad(0, "the file ends before its end mark: it is truncated".into()));
    };
    if end.events != replay.next_seq
        || end.events != header.seq
        || end.records != records.len() as u64 + skipped_records
        || end.office != office_events.len() as u64
        || end.attachments != attachments
    {
        return Err(bad(number, "the counts at the end do not match what the file holds".into()));
    }
    disk.import_events(&batch)?;
    disk.import_office(&office_events)?;
    let incidents: Vec<&Incident> = replay.incidents.values().collect();
    for (tree, key, value) in &records {
        disk.put(*tree, key, Some(value))?;
    }
    // The position is written last, with the incident states: a folder that has it is whole.
    let ops = disk.commit(&[], &incidents, &[], &[], position)?;
    disk.apply(&ops)?;
    disk.checkpoint().map_err(|e| StoreError::Write(e.to_string()))?;
    // What was put in above, sled only, is the event log's new beginning.
    disk.rebase().map_err(|e| StoreError::Write(e.to_string()))?;
    Ok(Carried {
        seq: header.seq,
        position: position.unwrap_or_default(),
        events: end.events,
        office: end.office,
        records: end.records,
        incidents: incidents.len() as u64,
        attachments,
    })
}

/// The outcome of `repair`.
#[derive(Debug)]
pub struct Repaired {
    pub events: u64,
    pub incidents: u64,
    /// Where sled's old files were put.
    pub aside: std::path::PathBuf,
}

/// Sets sled's files aside and rebuilds them from the event log, whatever their state, then
/// reads the folder back whole. Only on a stopped server's folder.
pub fn repair(dir: &Path) -> Result<Repaired, StoreError> {
    let disk = Disk::open(dir, 64 << 20, None, None, Opening::Rebuild)?;
    let loaded = disk.load()?;
    disk.checkpoint().map_err(|e| StoreError::Write(e.to_string()))?;
    let newest = std::fs::read_dir(dir)
        .map_err(|e| StoreError::open(dir, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("damaged-"))
        })
        .max();
    Ok(Repaired {
        events: loaded.last_seq,
        incidents: loaded.next_id - 1,
        aside: newest.unwrap_or_else(|| dir.to_owned()),
    })
}

/// The outcome of `verify`: what was checked and every problem found.
#[derive(Debug, Default)]
pub struct Verified {
    pub events: u64,
    /// Changes to the office.
    pub office: u64,
    pub incidents: u64,
    pub attachments: u64,
    pub problems: Vec<String>,
    /// Why sled's files could not be read as they are, when the check ran over sled rebuilt
    /// from the event log instead.
    pub rebuilt: Option<String>,
}

/// Checks a data folder offline: every event follows from the ones before it by the checksum
/// chain and decodes, sequence numbers have no gap, the log reaches the high-water mark, every
/// stored incident state equals the state rebuilt from the log (which also holds its deadlines,
/// from which the deadline index is built), and the office's log is whole and in order.
pub fn verify(dir: &Path) -> Result<Verified, StoreError> {
    if std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none()) {
        return Err(StoreError::Open {
            dir: dir.display().to_string(),
            reason: "there is no data folder here".into(),
        });
    }
    // sled repairs what it opens, so `verify` opens a scratch copy: the folder is never written.
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let scratch = tempfile::tempdir_in(parent).map_err(|e| StoreError::Open {
        dir: parent.display().to_string(),
        reason: format!("no room for a scratch copy: {e}"),
    })?;
    let copy = scratch.path().join("copy");
    copy_dir(dir, &copy)
        .map_err(|e| StoreError::Open { dir: dir.display().to_string(), reason: e.to_string() })?;
    let mut report = Verified::default();
    // sled's files damaged past reading: the check goes on over sled rebuilt from the event
    // log (what the server does at its start, and `hongfan repair`).
    let opened =
        std::panic::catch_unwind(|| Disk::open(&copy, 64 << 20, None, None, Opening::AsItIs))
            .unwrap_or_else(|_| Err(StoreError::corrupt(&copy, "sled failed reading its files")));
    let disk = match opened {
        Err(StoreError::Corrupt { reason, .. })
            if super::disk::log::Log::read(&copy).is_ok_and(|log| log.base.is_some()) =>
        {
            report.rebuilt = Some(reason);
            Disk::open(&copy, 64 << 20, None, None, Opening::Rebuild)
        }
        opened => opened,
    }
    .map_err(|e| name_original(e, &copy, dir))?;
    // Every file of the event log reads back whole.
    match super::disk::log::Log::read(&copy) {
        // A folder from before the event log: it begins at the server's next start.
        Ok(log) if log.base.is_none() => {}
        Ok(log) => {
            if let Err(why) = log.replay(|_, _| Ok(())) {
                report
                    .problems
                    .push(why.replace(&copy.display().to_string(), &dir.display().to_string()));
            }
        }
        Err(e) => report.problems.push(format!("the event log cannot be listed: {e}")),
    }
    let mut replay = Replay::default();
    let mut chain = Chain::default();
    const MAX_PROBLEMS: usize = 50;
    let problem = |report: &mut Verified, p: String| {
        if report.problems.len() < MAX_PROBLEMS {
            report.problems.push(p);
        }
    };
    for entry in disk.raw_events() {
        let (key, value) = match entry {
            Ok(kv) => kv,
            Err(e) => {
                problem(
                    &mut report,
                    format!("the log cannot be read past event {}: {e}", replay.next_seq),
                );
                break;
            }
        };
        report.events += 1;
        let json = match chain.check(key, &value) {
            Ok(json) => json,
            Err(why) => {
                problem(&mut report, why);
                chain.resume_after(key, &value);
                unframe(&value).unwrap_or_default()
            }
        };
        let event: Event = match serde_json::from_slice(json) {
            Ok(event) => event,
            Err(e) => {
                problem(&mut report, format!("event {key} does not decode: {e}"));
                replay.next_seq = key;
                continue;
            }
        };
        if event.seq != key {
            problem(&mut report, format!("event {} is stored under key {key}", event.seq));
        }
        if let Err(why) = replay.apply(&event) {
            problem(&mut report, why);
            replay.next_seq = event.seq;
        }
    }
    let mut office = Office::default();
    let mut office_chain = Chain::default();
    for entry in disk.raw_office() {
        let (key, value) = match entry {
            Ok(kv) => kv,
            Err(e) => {
                problem(&mut report, format!("the office's log cannot be read: {e}"));
                break;
            }
        };
        report.office += 1;
        let json = match office_chain.check(key, &value) {
            Ok(json) => json,
            Err(why) => {
                problem(&mut report, format!("the office's log: {why}"));
                office_chain.resume_after(key, &value);
                unframe(&value).unwrap_or_default()
            }
        };
        match serde_json::from_slice::<OfficeEvent>(json) {
            Ok(event) => {
                if let Err(why) = office.apply(&event) {
                    problem(&mut report, format!("the office's log: {why}"));
                    office.seq = event.seq;
                }
            }
            Err(e) => {
                problem(&mut report, format!("office event {key} does not decode: {e}"));
                office.seq = key;
            }
        }
    }
    let mut stored = BTreeMap::new();
    for entry in disk.raw_incidents() {
        match entry {
            Ok((key, value)) => match serde_json::from_slice::<Incident>(&value) {
                Ok(incident) => {
                    stored.insert(IncidentId(key), incident);
                }
                Err(e) => problem(&mut report, format!("incident {key} does not decode: {e}")),
            },
            Err(e) => {
                problem(&mut report, format!("the incident states cannot be read: {e}"));
                break;
            }
        }
    }
    report.incidents = stored.len() as u64;
    let marked = disk.read_mark();
    if marked > replay.next_seq {
        problem(
            &mut report,
            format!(
                "the log ends at event {}, but event {marked} was stored before: part of the log is lost",
                replay.next_seq
            ),
        );
    }
    for (id, rebuilt) in &replay.incidents {
        match stored.get(id) {
            None => problem(
                &mut report,
                format!("incident {} is in the log but has no stored state", id.0),
            ),
            Some(state) if state != rebuilt => problem(
                &mut report,
                format!(
                    "incident {}'s stored state differs from the state rebuilt from the log",
                    id.0
                ),
            ),
            Some(_) => {}
        }
    }
    for id in stored.keys().filter(|id| !replay.incidents.contains_key(id)) {
        problem(
            &mut report,
            format!("incident {} has a stored state but no events in the log", id.0),
        );
    }
    // Every file is whole (it hashes to its name), and every file a report names is there.
    let files = super::attachments::Attachments::open(&copy)?;
    let ids = files.ids()?;
    report.attachments = ids.len() as u64;
    for id in files.damaged()? {
        problem(&mut report, format!("attachment {id} is damaged: its bytes changed"));
    }
    for incident in replay.incidents.values() {
        for attachment in incident.report.attachments.iter().chain(&incident.proof) {
            if ids.binary_search(&attachment.id).is_err() {
                problem(
                    &mut report,
                    format!("incident {}'s attachment {} is missing", incident.id.0, attachment.id),
                );
            }
        }
    }
    Ok(report)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Errors about the scratch copy speak of the folder the operator named.
fn name_original(e: StoreError, copy: &Path, original: &Path) -> StoreError {
    let fix = |s: String| s.replace(&copy.display().to_string(), &original.display().to_string());
    match e {
        StoreError::Corrupt { dir, reason } => StoreError::Corrupt { dir: fix(dir), reason },
        StoreError::Open { dir, reason } => StoreError::Open { dir: fix(dir), reason },
        other => other,
    }
}
