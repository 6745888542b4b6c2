//! How the office runs, as its supervisors change it from the browser: the people, the kiosks,
//! the duty rota (排班) of each compound and the community itself. Every change is an
//! `OfficeEvent` — who, when, the record before and after — in a log of its own beside the
//! incidents', and `Office` is the fold of that log: nothing about the office is stored that the
//! log does not say.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::community::{Community, CommunityId, CompoundId};
use crate::event::{Actor, Role};
use crate::time::Timestamp;
pub use crate::time::date_of;

/// A person's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Person {
    pub login: String,
    pub name: String,
    pub role: Role,
    /// The community whose office they belong to.
    #[serde(default)]
    pub community: CommunityId,
    /// Where they act. For a supervisor, empty means the whole community (书记); a supervisor
    /// with compounds is a compound leader (网格长) who sees and manages only those.
    pub compounds: Vec<CompoundId>,
    /// A street office's supervisor (街道): the further communities they run as a 书记 runs
    /// her own. Only for a supervisor without compounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<CommunityId>,
    /// A building head's buildings (楼号 as the community writes them).
    #[serde(default)]
    pub buildings: Vec<String>,
    /// Argon2id (PHC string) of the password. Never sent to a client, never in a history view.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    pub disabled: bool,
    /// Set by a reset: the password is a one-time code, to be changed at the next login.
    #[serde(default)]
    pub must_change_password: bool,
}

/// A person's account as supervisors see it: everything but the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonView {
    pub login: String,
    pub name: String,
    pub role: Role,
    pub community: CommunityId,
    pub compounds: Vec<CompoundId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<CommunityId>,
    pub buildings: Vec<String>,
    pub disabled: bool,
    pub must_change_password: bool,
}

impl From<&Person> for PersonView {
    fn from(p: &Person) -> PersonView {
        PersonView {
            login: p.login.clone(),
            name: p.name.clone(),
            role: p.role,
            community: p.community.clone(),
            compounds: p.compounds.clone(),
            communities: p.communities.clone(),
            buildings: p.buildings.clone(),
            disabled: p.disabled,
            must_change_password: p.must_change_password,
        }
    }
}

impl Person {
    /// The communities this person runs as a whole: a 书记 her own, a street office's
    /// supervisor theirs; nobody else any.
    pub fn runs(&self) -> BTreeSet<CommunityId> {
        if self.role != Role::Supervisor || !self.compounds.is_empty() {
            return BTreeSet::new();
        }
        std::iter::once(&self.community).chain(&self.communities).cloned().collect()
    }

    /// Who this person acts as, and where: the compounds their communities hold in `office`.
    pub fn principal(&self, office: &Office) -> crate::principal::Principal {
        let actor = Actor { id: self.login.clone(), name: self.name.clone(), role: self.role };
        let runs = self.runs();
        let scope = if runs.is_empty() {
            crate::principal::Scope::Compounds(self.compounds.clone())
        } else {
            let compounds = runs
                .iter()
                .filter_map(|id| office.communities.get(id))
                .flat_map(|c| c.compounds.iter().map(|c| c.id.clone()))
                .collect();
            crate::principal::Scope::Communities { communities: runs, compounds }
        };
        crate::principal::Principal { actor, scope }
    }
}

/// A station's kiosk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Kiosk {
    pub id: String,
    pub compound: CompoundId,
    pub name: String,
    /// Argon2id of its credential's secret (`kiosk-N.<secret>`, given by the command line).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    /// A one-time pairing code from the admin page (its QR code), until used or expired.
    #[serde(default)]
    pub pairing: Option<Pairing>,
    pub revoked: bool,
}

/// 接口密钥: how another system (the street office's, the 12345 platform, an app) reports
/// through Open311, named as the reporter of what it sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// `key-N`: the part of the key before its dot.
    pub id: String,
    pub community: CommunityId,
    /// Who holds it, as the timeline names the reporter (街道办, 12345 热线…).
    pub name: String,
    /// SHA-256 (hex) of the key's secret, the part after its dot: random, so no slower hash
    /// is needed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    pub revoked: bool,
    /// 上级派单: the key of a platform whose orders are answered there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
}

/// Where a platform's work orders are answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Upstream {
    pub source: crate::incident::Source,
    /// Where each change of its orders is POSTed, as signed JSON.
    pub webhook: String,
    /// The HMAC-SHA256 key each delivery is signed with: shown once when issued, kept because
    /// every delivery is signed with it, never shown again.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
}

impl ApiKey {
    /// The key as it may be shown: without its digest or its signing secret.
    pub fn shown(&self) -> ApiKey {
        let mut shown = ApiKey { secret: String::new(), ..self.clone() };
        if let Some(upstream) = &mut shown.upstream {
            upstream.secret = String::new();
        }
        shown
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pairing {
    /// Argon2id of the code.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    pub expires: Timestamp,
}

/// One stretch of duty: from `from` to `to` (minutes after midnight, Asia/Shanghai; `to` may be
/// 1440), the workers on duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Shift {
    pub from: u16,
    pub to: u16,
    pub workers: Vec<String>,
}

/// A compound's duty rota: a shifts list for each weekday (Monday first), the workers on duty
/// whenever no shift covers the time (nights, weekends), and dates whose shifts replace the
/// week's (a holiday, a swap).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rota {
    pub week: [Vec<Shift>; 7],
    #[serde(default)]
    pub otherwise: Vec<String>,
    /// `YYYY-MM-DD` (Asia/Shanghai) → that day's shifts instead of the weekday's.
    #[serde(default)]
    pub dates: BTreeMap<String, Vec<Shift>>,
}

const DAY_MS: i64 = 86_400_000;
const SHANGHAI_MS: i64 = 8 * 3_600_000;

/// The day (days since 1970-01-01) and the minute of the day of `at` in Asia/Shanghai, and the
/// weekday (0 = Monday).
fn local(at: Timestamp) -> (i64, u16, usize) {
    let local = at.0 + SHANGHAI_MS;
    let day = local.div_euclid(DAY_MS);
    let minute = (local.rem_euclid(DAY_MS) / 60_000) as u16;
    // 1970-01-01 was a Thursday.
    let weekday = (day + 3).rem_euclid(7) as usize;
    (day, minute, weekday)
}

impl Rota {
    /// Who the rota has on duty at `at`.
    pub fn on_duty(&self, at: Timestamp) -> BTreeSet<String> {
        let (day, minute, weekday) = local(at);
        let shifts = self.dates.get(&date_of(day)).unwrap_or(&self.week[weekday]);
        let covering: Vec<&Shift> =
            shifts.iter().filter(|s| s.from <= minute && minute < s.to).collect();
        if covering.is_empty() {
            self.otherwise.iter().cloned().collect()
        } else {
            covering.into_iter().flat_map(|s| s.workers.iter().cloned()).collect()
        }
    }

    /// Why this rota cannot be kept, if it cannot.
    pub fn check(&self, workers: &BTreeSet<String>) -> Result<(), String> {
        let shifts = self.week.iter().chain(self.dates.values()).flatten();
        for shift in shifts {
            if shift.from >= shift.to || shift.to > 1440 {
                return Err(format!("a shift must end after it starts, by 24:00 ({shift:?})"));
            }
        }
        for date in self.dates.keys() {
            let ok = date.len() == 10
                && date.as_bytes()[4] == b'-'
                && date.as_bytes()[7] == b'-'
                && date.chars().filter(char::is_ascii_digit).count() == 8;
            if !ok {
                return Err(format!("{date:?} is not a date (YYYY-MM-DD)"));
            }
        }
        let named = self.week.iter().chain(self.dates.values()).flatten().flat_map(|s| &s.workers);
        for login in named.chain(&self.otherwise) {
            if !workers.contains(login) {
                return Err(format!("{login:?} is not a grid worker of this compound"));
            }
        }
        Ok(())
    }
}

/// What the office changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OfficeChange {
    /// A person's account added (`before` absent) or changed.
    Person {
        before: Option<Box<Person>>,
        after: Box<Person>,
    },
    Kiosk {
        before: Option<Box<Kiosk>>,
        after: Box<Kiosk>,
    },
    Rota {
        compound: CompoundId,
        before: Option<Box<Rota>>,
        after: Box<Rota>,
    },
    /// The community's compounds, categories, targets and phrases: for new incidents only.
    Community {
        before: Option<Box<Community>>,
        after: Box<Community>,
    },
    /// 楼长积分: points given (by a rule, with what earned them) or corrected by a supervisor.
    Award(crate::points::Award),
    /// 巡防: a building head's patrol round (the actor is the building head).
    Patrol(crate::points::Patrol),
    /// 接口密钥 issued (`before` absent) or revoked.
    ApiKey {
        before: Option<Box<ApiKey>>,
        after: Box<ApiKey>,
    },
}

/// One change to how the office runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfficeEvent {
    /// Position in the office's own log: gap-free, from 1.
    pub seq: u64,
    pub at: Timestamp,
    pub actor: Actor,
    pub change: OfficeChange,
}

/// The office as its log has made it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Office {
    pub seq: u64,
    pub people: BTreeMap<String, Person>,
    pub kiosks: BTreeMap<String, Kiosk>,
    pub api_keys: BTreeMap<String, ApiKey>,
    pub rotas: BTreeMap<CompoundId, Rota>,
    /// 楼长积分: every award, oldest first.
    pub ledger: Vec<crate::points::Entry>,
    /// Every community the deployment serves, by id (none only before the first event).
    pub communities: BTreeMap<CommunityId, Arc<Community>>,
    /// The community each compound belongs to.
    owners: HashMap<CompoundId, CommunityId>,
}

impl Office {
    /// Whether the ledger already has an award of `rule` for `incident`.
    pub fn awarded(&self, rule: crate::points::PointsRule, incident: crate::IncidentId) -> bool {
        self.ledger.iter().any(|e| e.award.rule == rule && e.award.incident == Some(incident))
    }

    /// Folds one event in; an event out of order is refused.
    pub fn apply(&mut self, event: &OfficeEvent) -> Result<(), String> {
        if event.seq != self.seq + 1 {
            return Err(format!("office event {} follows {}", event.seq, self.seq));
        }
        match &event.change {
            OfficeChange::Person { after, .. } => {
                self.people.insert(after.login.clone(), Person::clone(after));
            }
            OfficeChange::Kiosk { after, .. } => {
                self.kiosks.insert(after.id.clone(), Kiosk::clone(after));
            }
            OfficeChange::Rota { compound, after, .. } => {
                self.rotas.insert(compound.clone(), Rota::clone(after));
            }
            OfficeChange::Community { after, .. } => {
                // A community keeps its compounds (`Community::check_replaces`), so an owner
                // once recorded stays true.
                for compound in &after.compounds {
                    self.owners.insert(compound.id.clone(), after.id.clone());
                }
                self.communities.insert(after.id.clone(), Arc::new(Community::clone(after)));
            }
            OfficeChange::Award(award) => self.ledger.push(crate::points::Entry {
                seq: event.seq,
                at: event.at,
                by: event.actor.clone(),
                award: award.clone(),
            }),
            OfficeChange::Patrol(_) => {}
            OfficeChange::ApiKey { after, .. } => {
                self.api_keys.insert(after.id.clone(), ApiKey::clone(after));
            }
        }
        self.seq = event.seq;
        Ok(())
    }

    /// The community `compound` belongs to.
    pub fn community_of(&self, compound: &CompoundId) -> Option<&Arc<Community>> {
        self.owners.get(compound).and_then(|id| self.communities.get(id))
    }

    /// Why `community` cannot join or replace its namesake in this office, if it cannot: its own
    /// rules, the compounds and categories it must keep, and compounds no other community holds.
    pub fn check_community(&self, community: &Community) -> Result<(), crate::community::Problem> {
        match self.communities.get(&community.id) {
            Some(before) => community.check_replaces(before)?,
            None => community.check()?,
        }
        for (i, compound) in community.compounds.iter().enumerate() {
            if let Some(owner) = self.owners.get(&compound.id).filter(|o| **o != community.id) {
                return Err(crate::community::Problem {
                    place: crate::community::Place::Compound(i),
                    reason: format!(
                        "compound id {:?} already belongs to community {:?}",
                        compound.id.0, owner.0
                    ),
                });
            }
        }
        Ok(())
    }

    /// The active grid workers of a compound.
    pub fn workers_of(&self, compound: &CompoundId) -> BTreeSet<String> {
        self.people
            .values()
            .filter(|p| p.role == Role::Worker && !p.disabled && p.compounds.contains(compound))
            .map(|p| p.login.clone())
            .collect()
    }

    /// Who is on duty for `compound` at `at`: the rota's, changed by the workers' own switches
    /// (`overrides`: a worker's manual on or off, which wins over the rota).
    pub fn on_duty(
        &self,
        compound: &CompoundId,
        at: Timestamp,
        overrides: &BTreeMap<String, bool>,
    ) -> BTreeSet<String> {
        let scheduled = self.rotas.get(compound).map(|r| r.on_duty(at)).unwrap_or_default();
        self.workers_of(compound)
            .into_iter()
            .filter(|w| overrides.get(w).copied().unwrap_or(scheduled.contains(w)))
            .collect()
    }
}

/// The history as a supervisor reads it: everything the event says except secrets.
pub fn without_secrets(event: &OfficeEvent) -> OfficeEvent {
    let mut shown = event.clone();
    let hide_person = |p: &mut Box<Person>| p.secret = String::new();
    let hide_kiosk = |k: &mut Box<Kiosk>| {
        k.secret = String::new();
        if let Some(pairing) = &mut k.pairing {
            pairing.code = String::new();
        }
    };
    match &mut shown.change {
        OfficeChange::Person { before, after } => {
            before.iter_mut().for_each(hide_person);
            hide_person(after);
        }
        OfficeChange::Kiosk { before, after } => {
            before.iter_mut().for_each(hide_kiosk);
            hide_kiosk(after);
        }
        OfficeChange::ApiKey { before, after } => {
            let hide_key = |k: &mut Box<ApiKey>| **k = k.shown();
            before.iter_mut().for_each(hide_key);
            hide_key(after);
        }
        OfficeChange::Rota { .. }
        | OfficeChange::Community { .. }
        | OfficeChange::Award(_)
        | OfficeChange::Patrol(_) => {}
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date_minutes: (i64, i64)) -> Timestamp {
        // Midnight starting Monday 2026-11-02 in Asia/Shanghai.
        let monday = 1_793_548_800_000;
        Timestamp(monday + date_minutes.0 * DAY_MS + date_minutes.1 * 60_000)
    }

    fn rota() -> Rota {
        let day = vec![
            Shift { from: 8 * 60 + 30, to: 12 * 60, workers: vec!["wang".into()] },
            Shift { from: 12 * 60, to: 17 * 60 + 30, workers: vec!["li".into()] },
        ];
        let mut week: [Vec<Shift>; 7] = Default::default();
        for d in week.iter_mut().take(5) {
            *d = day.clone();
        }
        Rota { week, otherwise: vec!["zhou".into()], dates: BTreeMap::new() }
    }

    #[test]
    fn the_rota_says_who_is_on_duty_by_weekday_and_time_in_shanghai() {
        assert_eq!(date_of(local(at((0, 0))).0), "2026-11-02");
        assert_eq!(local(at((0, 0))).2, 0, "a Monday");
        let r = rota();
        let names = |t| r.on_duty(t).into_iter().collect::<Vec<_>>();
        assert_eq!(names(at((0, 9 * 60))), ["wang"]);
        assert_eq!(names(at((0, 13 * 60))), ["li"]);
        assert_eq!(names(at((0, 20 * 60))), ["zhou"], "nights");
        assert_eq!(names(at((5, 10 * 60))), ["zhou"], "Saturday");
        // A holiday on Tuesday: the otherwise-worker all day.
        let mut holiday = r.clone();
        holiday.dates.insert(date_of(local(at((1, 0))).0), Vec::new());
        assert_eq!(holiday.on_duty(at((1, 10 * 60))).into_iter().collect::<Vec<_>>(), ["zhou"]);
    }

    #[test]
    fn a_rota_that_cannot_be_kept_is_refused() {
        let workers: BTreeSet<String> = ["wang", "li", "zhou"].map(String::from).into();
        assert!(rota().check(&workers).is_ok());
        let mut bad = rota();
        bad.week[0][0].to = bad.week[0][0].from;
        assert!(bad.check(&workers).is_err());
        let mut stranger = rota();
        stranger.otherwise = vec!["nobody".into()];
        assert!(stranger.check(&workers).unwrap_err().contains("nobody"));
        let mut date = rota();
        date.dates.insert("next tuesday".into(), Vec::new());
        assert!(date.check(&workers).is_err());
    }

    /// The sample community as `id`, of `compounds`.
    fn community(id: &str, compounds: &[&str]) -> Community {
        let community =
            Community::sample(compounds, vec![crate::Category::sample("repair", false)]);
        Community { id: CommunityId(id.into()), name: format!("{id}社区"), ..community }
    }

    fn office_of(communities: &[Community]) -> Office {
        let mut office = Office::default();
        for (i, c) in communities.iter().enumerate() {
            let change = OfficeChange::Community { before: None, after: Box::new(c.clone()) };
            let event =
                OfficeEvent { seq: i as u64 + 1, at: Timestamp(0), actor: Actor::system(), change };
            office.apply(&event).expect("in order");
        }
        office
    }

    fn supervisor(community: &str, communities: &[&str], compounds: &[&str]) -> Person {
        Person {
            login: "shuji".into(),
            name: "书记".into(),
            role: Role::Supervisor,
            community: CommunityId(community.into()),
            compounds: compounds.iter().map(|c| CompoundId((*c).into())).collect(),
            communities: communities.iter().map(|c| CommunityId((*c).into())).collect(),
            buildings: Vec::new(),
            secret: String::new(),
            disabled: false,
            must_change_password: false,
        }
    }

    #[test]
    fn records_from_before_there_were_several_communities_read_as_the_default_one() {
        let mut old = serde_json::to_value(community("default", &["c1"])).unwrap();
        old.as_object_mut().unwrap().remove("id");
        let read: Community = serde_json::from_value(old).unwrap();
        assert_eq!(read.id, CommunityId("default".into()));
        let mut person = serde_json::to_value(supervisor("default", &[], &[])).unwrap();
        person.as_object_mut().unwrap().remove("community");
        let read: Person = serde_json::from_value(person).unwrap();
        assert_eq!(read.community, CommunityId::default());
        assert!(read.communities.is_empty());
    }

    #[test]
    fn each_compound_belongs_to_one_community() {
        let office = office_of(&[community("a", &["a1", "a2"]), community("b", &["b1"])]);
        assert_eq!(office.community_of(&CompoundId("a2".into())).unwrap().id.0, "a");
        assert_eq!(office.community_of(&CompoundId("b1".into())).unwrap().id.0, "b");
        assert!(office.community_of(&CompoundId("c9".into())).is_none());
        // B may not take A's compound, as a new community or by growing.
        let taken = office.check_community(&community("c", &["c1", "a1"])).unwrap_err();
        assert!(taken.reason.contains("\"a1\" already belongs to community \"a\""), "{taken}");
        assert!(office.check_community(&community("b", &["b1", "a2"])).is_err());
        // Growing with a new compound is fine; dropping one, or changing the id, is not.
        assert!(office.check_community(&community("b", &["b1", "b2"])).is_ok());
        assert!(office.check_community(&community("a", &["a1"])).is_err());
        assert!(office.check_community(&community("c", &["c1"])).is_ok());
        let mut renamed = community("a", &["a9"]);
        renamed.id = CommunityId("a b".into());
        assert!(office.check_community(&renamed).is_err(), "an id is letters, digits, _ or -");
    }

    #[test]
    fn a_community_supervisor_acts_in_her_own_community_and_a_street_supervisor_in_theirs() {
        use crate::principal::Scope;
        let office = office_of(&[
            community("a", &["a1", "a2"]),
            community("b", &["b1"]),
            community("c", &["c1"]),
        ]);
        let in_ = |p: &crate::principal::Principal, c: &str| p.may_act_in(&CompoundId(c.into()));
        let runs = |p: &crate::principal::Principal, c: &str| p.runs(&CommunityId(c.into()));

        let shuji = supervisor("a", &[], &[]).principal(&office);
        assert!(in_(&shuji, "a1") && in_(&shuji, "a2"));
        assert!(!in_(&shuji, "b1") && !in_(&shuji, "c1"));
        assert!(runs(&shuji, "a") && !runs(&shuji, "b"));

        let street = supervisor("a", &["b"], &[]).principal(&office);
        assert!(in_(&street, "a1") && in_(&street, "b1") && !in_(&street, "c1"));
        assert!(runs(&street, "b") && !runs(&street, "c"));

        // A compound leader runs no community, whatever communities the record names.
        let leader = supervisor("a", &["b"], &["a2"]).principal(&office);
        assert_eq!(leader.scope, Scope::Compounds(vec![CompoundId("a2".into())]));
        assert!(!runs(&leader, "a"));
        let worker = Person { role: Role::Worker, ..supervisor("a", &[], &["a1"]) };
        assert!(worker.runs().is_empty());
    }
}
