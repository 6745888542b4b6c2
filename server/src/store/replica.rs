//! A standby's side of the store: the record each committed group becomes in a replicated log,
//! the log a primary's committer appends to, and the follower that applies the primary's groups
//! to a folder of its own until it takes over.
//!
//! The log is the order of record: the primary appends a group and writes it to its own disk
//! only once the log holds it, and a standby writes the groups in the log's order. A folder
//! remembers the position of the last group it wrote (in the group's own write), so that after a
//! restart either continues from the log where its disk ends.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hongfan_shared::office::OfficeEvent;
use hongfan_shared::{Event, Incident, IncidentId};
use serde::{Deserialize, Serialize};

use super::housekeeping::Housekeeping;
use super::{AuxWrite, Store, StoreError};

/// One committed group, as the replicated log carries it: its events, its changes to the office,
/// the account records written with them, and the attachments uploaded since the last group
/// (before any report that names them). Incident states are not carried: a standby folds the
/// events into them, as the primary did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record<'a> {
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub events: Cow<'a, [Event]>,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub office: Cow<'a, [OfficeEvent]>,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub aux: Cow<'a, [AuxWrite]>,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub files: Cow<'a, [File]>,
}

/// An attachment's bytes (a photo or voice note), as the log carries it; its name is their hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct File {
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

/// Bytes as base64 in the log's JSON (a third larger, not four times, as numbers would be).
pub(super) mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], to: S) -> Result<S::Ok, S::Error> {
        to.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(from)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }

    /// The same for a value that may be absent (a removal).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, to: S) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(bytes) => super::serialize(bytes, to),
                None => to.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            from: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<super::Base64>::deserialize(from).map(|b| b.map(|b| b.0))
        }
    }

    #[derive(Deserialize)]
    struct Base64(#[serde(deserialize_with = "deserialize")] Vec<u8>);
}

impl<'a> Record<'a> {
    pub(super) fn borrowed(
        events: &'a [Event],
        office: &'a [OfficeEvent],
        aux: &'a [AuxWrite],
        files: &'a [File],
    ) -> Record<'a> {
        Record {
            events: events.into(),
            office: office.into(),
            aux: aux.into(),
            files: files.into(),
        }
    }
}

/// Where a primary's committer appends each group before writing it to its own disk.
pub trait Replicator: Send + Sync + std::fmt::Debug {
    /// Appends one group and waits until the log holds it; its position in the log. An error
    /// means the log does not hold it and this process must not acknowledge it: the committer
    /// stops, as after a failed disk write.
    fn append(&self, record: &Record<'_>) -> Result<u64, ReplicaError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Another process holds the lease now, or appended after this one's last group.
    #[error("this server no longer holds the lease: another has taken over")]
    LostLease,
    #[error("the replicated log cannot be reached: {0}")]
    Unreachable(String),
}

/// What a standby keeps between the groups it applies (the office it has made is the
/// published one).
#[derive(Debug, Default)]
pub(super) struct Follower {
    housekeeping: Housekeeping,
}

impl Store {
    /// Whether this store follows a primary (and takes no writes).
    pub fn is_standby(&self) -> bool {
        self.shared.standby.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The replicated log's position of the last group this folder wrote (0 before any): a
    /// standby, or a primary restarting as one, continues from the next.
    pub fn position(&self) -> Result<u64, StoreError> {
        self.shared.disk.position()
    }

    /// Writes the primary's group at `position` to this standby's folder and shows it, as the
    /// primary's committer did: readers and boards see it, durable. A group at or before the
    /// folder's position is already written and is skipped. A group that does not follow what
    /// the folder holds (a gap, or events that do not apply) is refused, and nothing of it is
    /// written. Blocking: it waits on the disk.
    pub fn apply_replicated(&self, position: u64, record: Record<'_>) -> Result<(), StoreError> {
        let shared = &self.shared;
        let mut guard = shared.follower.lock().map_err(|_| StoreError::Poisoned)?;
        let Some(follower) = guard.as_mut() else { return Err(StoreError::Closed) };
        if position <= shared.disk.position()? {
            return Ok(());
        }
        let refuse = |why: String| StoreError::Corrupt {
            dir: shared.disk.dir().display().to_string(),
            reason: format!("the replicated log's group at position {position} {why}"),
        };
        let published = shared.read()?;
        let Record { events, office, aux, files } = record;
        // A folder seeded from a snapshot may already hold the first events and office changes
        // of the groups after the snapshot's position (it was read while they were written):
        // those are skipped, the rest must follow.
        let held = events.iter().take_while(|e| e.seq <= published.seq).count();
        let events: Cow<'_, [Event]> = match held {
            0 => events,
            held => events[held..].to_vec().into(),
        };
        let office_seq = published.office.office.seq;
        let held = office.iter().take_while(|e| e.seq <= office_seq).count();
        let office: Cow<'_, [OfficeEvent]> = match held {
            0 => office,
            held => office[held..].to_vec().into(),
        };
        // Folded as the primary folded them: each event onto its incident's state before it.
        let mut latest: HashMap<IncidentId, Arc<Incident>> = HashMap::new();
        let mut states = Vec::with_capacity(events.len());
        let mut seq = published.seq;
        for event in events.iter() {
            if event.seq != seq + 1 {
                return Err(refuse(format!("has event {} after event {seq}", event.seq)));
            }
            seq = event.seq;
            let before = match latest.get(&event.incident) {
                Some(state) => Some(state.clone()),
                None => match published.open.get(&event.incident) {
                    Some(state) => Some(state.clone()),
                    None => shared.disk.incident(event.incident)?.map(Arc::new),
                },
            };
            let after = match &before {
                Some(state) => {
                    let mut incident = Incident::clone(state);
                    incident.apply(event).map_err(|e| refuse(e.to_string()))?;
                    incident
                }
                None => Incident::from_event(event).map_err(|e| refuse(e.to_string()))?,
            };
            let after = Arc::new(after);
            latest.insert(event.incident, after.clone());
            states.push((before, after));
        }
        let changed = match office.is_empty() {
            true => None,
            false => {
                let mut changed = published.office.office.clone();
                for event in office.iter() {
                    changed.apply(event).map_err(&refuse)?;
                }
                Some(changed)
            }
        };
        // Before the reports that name them, as on the primary.
        for file in files.iter() {
            shared.attachments.put(&file.bytes)?;
        }
        let touched: BTreeMap<IncidentId, &Incident> =
            latest.iter().map(|(id, state)| (*id, &**state)).collect();
        let incidents: Vec<&Incident> = touched.values().copied().collect();
        let written = shared.disk.commit(&events, &incidents, &office, &aux, Some(position));
        if let Err(e) = written.and_then(|ops| shared.disk.apply(&ops)) {
            shared.fail_write(&e);
            return Err(e);
        }
        let seq = shared.show(&events, incidents.into_iter(), &latest, changed.as_ref())?;
        let ended = aux.iter().filter(|w| w.tree == super::Aux::Sessions && w.value.is_none());
        let ended = ended.map(|w| Arc::from(w.key.as_slice())).collect();
        shared.broadcast(events.into_owned(), states, office.into_owned(), Vec::new(), ended);
        match follower.housekeeping.run(shared, seq, false) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Records that this folder holds the log up to `position`: a folder whose history went
    /// into an empty log (as groups it already has).
    pub async fn set_position(&self, position: u64) -> Result<(), StoreError> {
        let store = self.clone();
        super::blocking(move || {
            let shared = &store.shared;
            let following = shared.follower.lock().map_err(|_| StoreError::Poisoned)?;
            if following.is_none() {
                return Err(StoreError::Closed);
            }
            let ops = shared.disk.commit(&[], &[], &[], &[], Some(position))?;
            shared.disk.apply(&ops)
        })
        .await
    }

    /// Stores an attachment's bytes durably and returns its name; with a standby, the log
    /// holds them too before this returns, so that a report naming them finds them on either.
    /// Blocking: it waits on the disk (and the log).
    pub fn attach(&self, bytes: &[u8]) -> Result<String, StoreError> {
        if self.is_standby() {
            return Err(StoreError::Standby);
        }
        let id = self.shared.attachments.put(bytes)?;
        if self.shared.writer.get().is_some_and(|w| w.replicated) {
            let file = File { bytes: bytes.to_vec() };
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.tx.send(super::Command::File { file, reply }).map_err(|_| StoreError::Closed)?;
            answer.blocking_recv().map_err(|_| StoreError::Closed)??;
        }
        Ok(id)
    }

    /// Takes over: the standby starts writing on what it has applied, recording at once what
    /// fell due meanwhile, with each group appended to `log` first. Whoever calls it holds the
    /// lease and has applied the whole log.
    pub fn promote(&self, log: Arc<dyn Replicator>) -> Result<(), StoreError> {
        let following = self.shared.follower.lock().map_err(|_| StoreError::Poisoned)?.take();
        if following.is_none() {
            return Err(StoreError::Closed);
        }
        // Requests are refused as `Standby` until the committer runs.
        self.start_writing(Some(log), None)?;
        self.shared.standby.store(false, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Resolves once this store writes: at once for a primary, when a standby takes over.
    pub async fn until_primary(&self) {
        self.shared.primary.cancelled().await;
    }

    /// A standby's close: what it applied durable in sled, and the high-water mark written.
    pub(super) fn stop_following(&self) -> Result<(), StoreError> {
        let shared = &self.shared;
        let seq = shared.read()?.seq;
        let mut follower = shared.follower.lock().map_err(|_| StoreError::Poisoned)?;
        match follower.as_mut().and_then(|f| f.housekeeping.run(shared, seq, true)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
