//! The data folder's older formats, and their migrations to the current one: each is run once,
//! when a folder of that format is first opened by this version, and is safe to interrupt.

use hongfan_shared::Seq;
use hongfan_shared::office;

use super::{Chain, Disk, FORMAT, number, timeline_key, unframe};
use crate::store::{Aux, StoreError};

/// The format before events carried checksums; a folder of it is upgraded in place on open.
pub(super) const FORMAT_1: &[u8] = b"hongfan-1";
/// Events rewritten per batch while upgrading.
const UPGRADE_BATCH: usize = 10_000;

/// Whether a stored event is in the old, unframed format: JSON from its first byte. A framed
/// event's JSON starts at byte 4, where an unframed one has the `q` of `{"seq"`.
fn is_unframed(stored: &[u8]) -> bool {
    stored.starts_with(b"{\"seq\"")
}

impl Disk {
    /// Accounts a folder from before the office log kept in trees of their own, to be moved into
    /// the office log (once, at the first start of this version).
    pub(in crate::store) fn legacy_accounts(
        &self,
    ) -> Result<(Vec<office::Person>, Vec<office::Kiosk>), StoreError> {
        #[derive(serde::Deserialize)]
        struct User {
            login: String,
            name: String,
            role: hongfan_shared::Role,
            compounds: Vec<hongfan_shared::CompoundId>,
            password: String,
            disabled: bool,
        }
        #[derive(serde::Deserialize)]
        struct Kiosk {
            id: String,
            compound: hongfan_shared::CompoundId,
            name: String,
            secret: String,
            revoked: bool,
        }
        let read = |e: serde_json::Error| StoreError::Read(e.to_string());
        let people = self
            .scan(Aux::Users)?
            .iter()
            .map(|v| serde_json::from_slice::<User>(v).map_err(read))
            .map(|u| {
                u.map(|u| office::Person {
                    // A supervisor of the first version ran the whole community.
                    compounds: if u.role == hongfan_shared::Role::Supervisor {
                        Vec::new()
                    } else {
                        u.compounds
                    },
                    login: u.login,
                    name: u.name,
                    role: u.role,
                    community: Default::default(),
                    communities: Vec::new(),
                    buildings: Vec::new(),
                    secret: u.password,
                    disabled: u.disabled,
                    must_change_password: false,
                })
            })
            .collect::<Result<_, _>>()?;
        let kiosks = self
            .scan(Aux::Kiosks)?
            .iter()
            .map(|v| serde_json::from_slice::<Kiosk>(v).map_err(read))
            .map(|k| {
                k.map(|k| office::Kiosk {
                    id: k.id,
                    compound: k.compound,
                    name: k.name,
                    secret: k.secret,
                    pairing: None,
                    revoked: k.revoked,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((people, kiosks))
    }

    /// Rewrites a folder of the first format with the checksum chain, in batches, then marks
    /// it as the current format. Safe to interrupt: a rerun frames what is still unframed and
    /// recomputes the same chain over what is framed already.
    pub(super) fn upgrade(&self, meta: &sled::Tree) -> Result<(), StoreError> {
        let fail = |e: &dyn std::fmt::Display| StoreError::open(&self.dir, e);
        tracing::info!(dir = %self.dir.display(), "upgrading the data folder to checksummed events");
        let mut chain = Chain::default();
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for entry in self.events.iter() {
            let (k, v) = entry.map_err(|e| fail(&e))?;
            let seq = number(&k).ok_or_else(|| fail(&"an event key is not a number"))?;
            let json = if is_unframed(&v) { &v[..] } else { unframe(&v).unwrap_or(&v[..]) };
            let framed = chain.frame(seq, json);
            if framed[..] != v[..] {
                batch.insert(&k[..], framed);
                pending += 1;
            }
            if pending == UPGRADE_BATCH {
                self.events.apply_batch(std::mem::take(&mut batch)).map_err(|e| fail(&e))?;
                pending = 0;
            }
        }
        self.events.apply_batch(batch).map_err(|e| fail(&e))?;
        // Incident states kept every seq of their events; now only the last, the rest in the
        // timeline index.
        for entry in self.incidents.iter() {
            let (k, v) = entry.map_err(|e| fail(&e))?;
            let mut state: serde_json::Value = serde_json::from_slice(&v).map_err(|e| fail(&e))?;
            let Some(object) = state.as_object_mut() else { continue };
            let Some(seqs) = object.remove("events") else { continue };
            let seqs: Vec<Seq> = serde_json::from_value(seqs).map_err(|e| fail(&e))?;
            object.insert("last_seq".into(), seqs.last().copied().unwrap_or(0).into());
            let id = number(&k).unwrap_or(0);
            for seq in seqs {
                self.timeline.insert(timeline_key(id, seq), &[]).map_err(|e| fail(&e))?;
            }
            let bytes = serde_json::to_vec(&state).map_err(|e| fail(&e))?;
            self.incidents.insert(k, bytes).map_err(|e| fail(&e))?;
        }
        self.sync().map_err(|e| fail(&e))?;
        meta.insert("format", FORMAT).map_err(|e| fail(&e))?;
        self.sync().map_err(|e| fail(&e))
    }
}
