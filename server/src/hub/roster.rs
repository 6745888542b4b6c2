//! Who is on duty: the rota (排班) of each compound, changed by the workers' own duty switches.
//!
//! The rota decides. A worker's switch on the board is a manual override of it, which lasts
//! until the rota's next change for that worker (the end of the shift they switched off in, the
//! start of the next one after they switched on) or until they switch back. A manual "on" also
//! ends when the worker's last connection has been gone longer than the grace period (a closed
//! laptop should not keep a compound looking staffed); the rota's own shifts do not depend on a
//! connection.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hongfan_shared::office::Office;
use hongfan_shared::protocol::OnDuty;
use hongfan_shared::{Actor, CommunityId, CompoundId, Timestamp};

use crate::store::DutySwitch;

/// How long a worker switched on by hand stays on duty with no live connection.
pub const DUTY_GRACE: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy)]
struct Override {
    on: bool,
    /// Whether the rota had the worker on duty when they switched: the override lasts while
    /// it still says the same.
    scheduled: bool,
    /// When the worker's last connection closed, while it has none.
    orphaned_since: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Roster {
    overrides: BTreeMap<String, Override>,
    connections: HashMap<String, usize>,
    /// The list last told to the boards.
    told: Vec<OnDuty>,
}

impl Roster {
    /// A worker switches on or off; `scheduled` is what the rota says of them now. Switching to
    /// what the rota says anyway just follows the rota again.
    pub fn switch(&mut self, worker: &str, on: bool, scheduled: bool) {
        if on == scheduled {
            self.overrides.remove(worker);
            return;
        }
        let connected = self.connections.get(worker).copied().unwrap_or(0) > 0;
        let orphaned_since = (!connected).then(Instant::now);
        self.overrides.insert(worker.to_owned(), Override { on, scheduled, orphaned_since });
    }

    pub fn connected(&mut self, worker: &str) {
        *self.connections.entry(worker.to_owned()).or_default() += 1;
        if let Some(o) = self.overrides.get_mut(worker) {
            o.orphaned_since = None;
        }
    }

    pub fn disconnected(&mut self, worker: &str, now: Instant) {
        let left = match self.connections.get_mut(worker) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => 0,
        };
        if left == 0 {
            self.connections.remove(worker);
            if let Some(o) = self.overrides.get_mut(worker) {
                o.orphaned_since = Some(now);
            }
        }
    }

    /// Drops the overrides that have lapsed: the rota moved on for their worker, or a manual
    /// "on" lost its last connection longer than `grace` ago.
    pub fn sweep(&mut self, office: &Office, at: Timestamp, now: Instant, grace: Duration) {
        self.overrides.retain(|worker, o| {
            let rota_moved = scheduled(office, worker, at) != o.scheduled;
            let abandoned =
                o.on && o.orphaned_since.is_some_and(|t| now.duration_since(t) >= grace);
            !rota_moved && !abandoned
        });
    }

    /// The switches in force, as kept (`Store::keep_duty`).
    pub fn kept(&self) -> BTreeMap<String, DutySwitch> {
        let kept = |o: &Override| DutySwitch { on: o.on, scheduled: o.scheduled };
        self.overrides.iter().map(|(w, o)| (w.clone(), kept(o))).collect()
    }

    /// Takes the switches kept (at a start or a takeover): a worker not connected now counts as
    /// gone since `now`, so a manual "on" lasts the grace period unless they come back.
    pub fn restore(&mut self, switches: BTreeMap<String, DutySwitch>, now: Instant) {
        for (worker, DutySwitch { on, scheduled }) in switches {
            let connected = self.connections.get(&worker).copied().unwrap_or(0) > 0;
            let orphaned_since = (!connected).then_some(now);
            self.overrides.insert(worker, Override { on, scheduled, orphaned_since });
        }
    }

    /// The switches in force: worker → on or off.
    pub fn overrides(&self) -> BTreeMap<String, bool> {
        self.overrides.iter().map(|(w, o)| (w.clone(), o.on)).collect()
    }

    /// Who is on duty at `at`, per worker, and whether by their own switch.
    pub fn list(&self, office: &Office, at: Timestamp) -> Vec<OnDuty> {
        let overrides = self.overrides();
        let mut on: BTreeMap<&str, OnDuty> = BTreeMap::new();
        for compound in office.communities.values().flat_map(|c| &c.compounds) {
            for login in office.on_duty(&compound.id, at, &overrides) {
                let Some(person) = office.people.get(&login) else { continue };
                let entry = on.entry(&person.login).or_insert_with(|| OnDuty {
                    worker: Actor {
                        id: person.login.clone(),
                        name: person.name.clone(),
                        role: person.role,
                    },
                    compounds: Vec::new(),
                    manual: overrides.get(&person.login) == Some(&true),
                });
                entry.compounds.push(compound.id.clone());
            }
        }
        on.into_values().collect()
    }

    /// The list at `at` if it differs from the one last told, which it then becomes.
    pub fn news(&mut self, office: &Office, at: Timestamp) -> Option<Vec<OnDuty>> {
        let list = self.list(office, at);
        (list != self.told).then(|| {
            self.told = list.clone();
            list
        })
    }
}

/// Whether the rota has `worker` on duty at `at` in any of their compounds.
pub fn scheduled(office: &Office, worker: &str, at: Timestamp) -> bool {
    let Some(person) = office.people.get(worker) else { return false };
    person
        .compounds
        .iter()
        .any(|c| office.rotas.get(c).is_some_and(|rota| rota.on_duty(at).contains(worker)))
}

/// The entries of `list` in `communities`: each worker with only those communities' compounds.
pub fn within(
    list: &[OnDuty],
    communities: &BTreeSet<CommunityId>,
    office: &Office,
) -> Vec<OnDuty> {
    let ours = |c: &CompoundId| office.community_of(c).is_some_and(|c| communities.contains(&c.id));
    list.iter()
        .filter_map(|entry| {
            let compounds: Vec<CompoundId> =
                entry.compounds.iter().filter(|c| ours(c)).cloned().collect();
            (!compounds.is_empty()).then(|| OnDuty { compounds, ..entry.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hongfan_shared::office::{OfficeChange, OfficeEvent, Person, Rota, Shift};
    use hongfan_shared::{CompoundId, Role};

    /// 2026-11-02 09:00 Asia/Shanghai, a Monday.
    const NINE: Timestamp = Timestamp(1_793_581_200_000);
    const HOUR: i64 = 3_600_000;

    fn office() -> Office {
        let mut office = Office::default();
        let c1 = CompoundId("c1".into());
        let community = hongfan_shared::Community::sample(&["c1"], Vec::new());
        let person = |login: &str| Person {
            login: login.into(),
            name: login.into(),
            role: Role::Worker,
            compounds: vec![c1.clone()],
            community: Default::default(),
            communities: Vec::new(),
            buildings: Vec::new(),
            secret: String::new(),
            disabled: false,
            must_change_password: false,
        };
        // wang works Monday 08:30–12:00; nobody otherwise.
        let mut rota = Rota::default();
        rota.week[0] = vec![Shift { from: 8 * 60 + 30, to: 12 * 60, workers: vec!["wang".into()] }];
        let changes = vec![
            OfficeChange::Community { before: None, after: Box::new(community) },
            OfficeChange::Person { before: None, after: Box::new(person("wang")) },
            OfficeChange::Person { before: None, after: Box::new(person("li")) },
            OfficeChange::Rota { compound: c1, before: None, after: Box::new(rota) },
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let event = OfficeEvent { seq: i as u64 + 1, at: NINE, actor: Actor::system(), change };
            office.apply(&event).unwrap();
        }
        office
    }

    fn names(list: &[OnDuty]) -> Vec<(&str, bool)> {
        list.iter().map(|d| (d.worker.id.as_str(), d.manual)).collect()
    }

    #[test]
    fn the_rota_decides_and_a_switch_overrides_it_until_the_rota_moves_on() {
        let office = office();
        let mut roster = Roster::default();
        let now = Instant::now();
        assert_eq!(names(&roster.list(&office, NINE)), [("wang", false)]);
        // wang steps out; li steps in by hand.
        roster.switch("wang", false, true);
        roster.connected("li");
        roster.switch("li", true, false);
        assert_eq!(names(&roster.list(&office, NINE)), [("li", true)]);
        // Noon: wang's shift ends, so his "off" has nothing left to override; li's "on" stays
        // (the rota still does not have him).
        let noon = Timestamp(NINE.0 + 3 * HOUR);
        roster.sweep(&office, noon, now, DUTY_GRACE);
        assert_eq!(roster.overrides(), BTreeMap::from([("li".to_owned(), true)]));
        // li closes his board: his manual "on" lapses after the grace period.
        roster.disconnected("li", now);
        roster.sweep(&office, noon, now + DUTY_GRACE / 2, DUTY_GRACE);
        assert_eq!(names(&roster.list(&office, noon)), [("li", true)]);
        roster.sweep(&office, noon, now + DUTY_GRACE, DUTY_GRACE);
        assert!(roster.list(&office, noon).is_empty(), "nobody on duty in the afternoon");
    }

    #[test]
    fn news_only_when_the_list_changes() {
        let office = office();
        let mut roster = Roster::default();
        assert!(roster.news(&office, NINE).is_some());
        assert!(roster.news(&office, NINE).is_none());
        assert_eq!(roster.news(&office, Timestamp(NINE.0 + 3 * HOUR)), Some(Vec::new()));
    }
}
