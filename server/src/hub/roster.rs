//! The duty roster: which workers are on duty, for which compounds.
//!
//! A worker stays on duty while one of its connections is alive; when the last one is gone for
//! longer than the grace period (a dropped phone connection, a closed laptop) it is taken off.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hongfan_shared::protocol::OnDuty;
use hongfan_shared::{Actor, CompoundId};

/// How long a worker with no live connection stays on duty.
pub const DUTY_GRACE: Duration = Duration::from_secs(180);

#[derive(Debug)]
struct Entry {
    duty: OnDuty,
    connections: usize,
    /// When its last connection closed, while it has none.
    orphaned_since: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Roster {
    on_duty: BTreeMap<String, Entry>,
}

impl Roster {
    /// Puts a worker on duty; `connections` is how many it has open now.
    pub fn set_on(&mut self, worker: Actor, compounds: Vec<CompoundId>, connections: usize) {
        let id = worker.id.clone();
        let entry = Entry { duty: OnDuty { worker, compounds }, connections, orphaned_since: None };
        self.on_duty.insert(id, entry);
    }

    pub fn set_off(&mut self, worker_id: &str) -> bool {
        self.on_duty.remove(worker_id).is_some()
    }

    pub fn is_on(&self, worker_id: &str) -> bool {
        self.on_duty.contains_key(worker_id)
    }

    pub fn connected(&mut self, worker_id: &str) {
        if let Some(entry) = self.on_duty.get_mut(worker_id) {
            entry.connections += 1;
            entry.orphaned_since = None;
        }
    }

    pub fn disconnected(&mut self, worker_id: &str, now: Instant) {
        if let Some(entry) = self.on_duty.get_mut(worker_id) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                entry.orphaned_since = Some(now);
            }
        }
    }

    /// Takes off duty every worker whose connections have been gone longer than `grace`;
    /// returns whether anyone was.
    pub fn sweep(&mut self, now: Instant, grace: Duration) -> bool {
        let before = self.on_duty.len();
        self.on_duty.retain(|_, e| e.orphaned_since.is_none_or(|t| now.duration_since(t) < grace));
        self.on_duty.len() != before
    }

    /// Whether anybody is on duty for `compound`.
    pub fn covers(&self, compound: &CompoundId) -> bool {
        self.on_duty.values().any(|e| e.duty.compounds.contains(compound))
    }

    /// Every compound somebody is on duty for.
    pub fn covered(&self) -> std::collections::BTreeSet<CompoundId> {
        self.on_duty.values().flat_map(|e| e.duty.compounds.iter().cloned()).collect()
    }

    pub fn list(&self) -> Vec<OnDuty> {
        self.on_duty.values().map(|e| e.duty.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hongfan_shared::Role;

    fn worker(id: &str) -> Actor {
        Actor { id: id.into(), name: id.into(), role: Role::Worker }
    }

    #[test]
    fn a_worker_without_connections_goes_off_duty_after_the_grace_period() {
        let mut roster = Roster::default();
        let c1 = CompoundId("c1".into());
        let t0 = Instant::now();
        roster.set_on(worker("a"), vec![c1.clone()], 1);
        assert!(roster.covers(&c1));
        roster.disconnected("a", t0);
        assert!(!roster.sweep(t0 + DUTY_GRACE / 2, DUTY_GRACE), "still within the grace period");
        // Reconnecting in time keeps it on duty.
        roster.connected("a");
        assert!(!roster.sweep(t0 + DUTY_GRACE * 2, DUTY_GRACE));
        roster.disconnected("a", t0 + DUTY_GRACE * 2);
        assert!(roster.sweep(t0 + DUTY_GRACE * 3, DUTY_GRACE));
        assert!(!roster.covers(&c1));
        assert!(roster.list().is_empty());
    }
}
