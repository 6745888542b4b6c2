//! Who is on duty: the rota with the workers' own switches, kept durable, and told to every
//! board that watches the roster when it changes.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use hongfan_shared::office::Office;
use hongfan_shared::protocol::ServerMessage;
use hongfan_shared::{CommunityId, Principal, Role, Timestamp};

use super::registry::{Clients, Conn, Outgoing};
use super::{Hub, encode, roster};
use crate::store::StoreError;

/// Whether a role watches the duty roster (workers and supervisors).
pub(super) fn sees_roster(role: Role) -> bool {
    matches!(role, Role::Worker | Role::Supervisor)
}

impl Hub {
    /// Who is on duty now, by the rota and the workers' switches.
    pub fn on_duty(&self) -> Vec<hongfan_shared::protocol::OnDuty> {
        let (office, at) = (self.0.store.office(), self.0.store.now());
        self.clients().roster.list(&office.office, at)
    }

    /// A worker switches on or off duty (overriding the rota until it next changes for them);
    /// everyone who watches the roster hears of it, and the switch is kept.
    pub(super) async fn set_duty(&self, principal: &Principal, on: bool) -> Result<(), StoreError> {
        // The switches kept come first (just after a takeover they may not be read yet), so
        // that this one is not overwritten by an older one.
        self.keep_duty().await?;
        {
            let (office, at) = (self.0.store.office(), self.0.store.now());
            let mut clients = self.clients();
            let id = &principal.actor.id;
            clients.roster.switch(id, on, roster::scheduled(&office.office, id, at));
            self.publish_duty(&mut clients, &office.office, at);
        }
        self.keep_duty().await
    }

    /// Keeps the roster's switches where they changed since last kept. The first time this
    /// server writes (it starts, or takes over), it first reads the switches kept into the
    /// roster; a standby keeps nothing (its switches are the primary's, in the log).
    pub(super) async fn keep_duty(&self) -> Result<(), StoreError> {
        let mut kept = self.0.duty_kept.lock().await;
        if self.0.store.is_standby() {
            return Ok(());
        }
        if kept.is_none() {
            let store = self.0.store.clone();
            let switches = tokio::task::spawn_blocking(move || store.duty_switches())
                .await
                .map_err(|e| StoreError::Read(e.to_string()))??;
            let (office, at) = (self.0.store.office(), self.0.store.now());
            let mut clients = self.clients();
            clients.roster.restore(switches.clone(), Instant::now());
            self.publish_duty(&mut clients, &office.office, at);
            *kept = Some(switches);
        }
        let Some(before) = kept.as_mut() else { return Ok(()) };
        let now = self.clients().roster.kept();
        let gone: Vec<String> = before.keys().filter(|w| !now.contains_key(*w)).cloned().collect();
        for worker in gone {
            self.0.store.keep_duty(&worker, None).await?;
            before.remove(&worker);
        }
        for (worker, switch) in now {
            if before.get(&worker) != Some(&switch) {
                self.0.store.keep_duty(&worker, Some(switch)).await?;
                before.insert(worker, switch);
            }
        }
        Ok(())
    }

    /// Gives the committer the switches in force, and tells the boards when who is on duty
    /// changed.
    pub(super) fn publish_duty(&self, clients: &mut Clients, office: &Office, at: Timestamp) {
        self.0.store.duty().set(clients.roster.overrides());
        if let Some(on_duty) = clients.roster.news(office, at) {
            let (cap, metrics) = (self.0.limits.queue, self.0.store.metrics());
            // Each community's list encoded once, however many connections read it.
            let mut encoded: HashMap<BTreeSet<CommunityId>, Utf8Bytes> = HashMap::new();
            for conn in clients.conns.values() {
                if conn.subscribed && sees_roster(conn.role()) {
                    let text = encoded.entry(conn.communities()).or_insert_with_key(|ours| {
                        let on_duty = roster::within(&on_duty, ours, office);
                        encode(&ServerMessage::Roster { on_duty })
                    });
                    conn.push(Outgoing::Text(text.clone()), cap, metrics);
                }
            }
        }
    }

    /// Who is on duty now in the communities of connection `id`, as a message.
    pub(super) fn roster_message(&self, id: u64) -> Utf8Bytes {
        let (office, at) = (self.0.store.office(), self.0.store.now());
        let clients = self.clients();
        let ours = clients.conns.get(&id).map(Conn::communities).unwrap_or_default();
        let on_duty =
            roster::within(&clients.roster.list(&office.office, at), &ours, &office.office);
        encode(&ServerMessage::Roster { on_duty })
    }

    /// Lets lapsed duty switches go and tells the boards when a shift began or ended.
    pub fn sweep_duty(&self) {
        let (office, at) = (self.0.store.office(), self.0.store.now());
        let mut clients = self.clients();
        clients.roster.sweep(&office.office, at, Instant::now(), roster::DUTY_GRACE);
        self.publish_duty(&mut clients, &office.office, at);
    }
}
