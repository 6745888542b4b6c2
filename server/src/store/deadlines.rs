//! The deadline index: when each open incident next has something due (a first-time target,
//! the unclaimed escalation), earliest first.
//! Rebuilt from the open incidents at start; owned by the committer.

use std::collections::{BTreeSet, HashMap};

use hongfan_shared::{Incident, IncidentId, Timestamp};

#[derive(Debug, Default)]
pub(super) struct Deadlines {
    by_time: BTreeSet<(Timestamp, IncidentId)>,
    by_incident: HashMap<IncidentId, Timestamp>,
}

impl Deadlines {
    /// Records the incident's next deadline, replacing any it had.
    pub(super) fn update(&mut self, incident: &Incident) {
        if let Some(old) = self.by_incident.remove(&incident.id) {
            self.by_time.remove(&(old, incident.id));
        }
        if let Some(at) = incident.next_due() {
            self.by_time.insert((at, incident.id));
            self.by_incident.insert(incident.id, at);
        }
    }

    pub(super) fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|&(at, _)| at)
    }

    /// Removes and returns the incidents whose deadline is at or before `now`, the earliest
    /// first, at most `max` of them.
    pub(super) fn take_due(&mut self, now: Timestamp, max: usize) -> Vec<IncidentId> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.by_time.first() {
            if at > now || due.len() >= max {
                break;
            }
            self.by_time.pop_first();
            self.by_incident.remove(&id);
            due.push(id);
        }
        due
    }
}
