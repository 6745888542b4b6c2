//! What each viewer may see of an incident and of each of its events: the one rule, used for
//! every live push, snapshot, resume, lookup and HTTP answer.
//!
//! - A community supervisor (书记) sees every incident; a compound leader (网格长), a worker or
//!   a building head those of their compounds; a kiosk only the incidents it reported.
//! - A phone number is never sent in full: it is masked for everyone, and a worker who needs it
//!   asks for it (`reveal`), which is logged.
//! - Workers' notes (and the notes of 代办) are for workers and supervisors, never for the shared
//!   screens of kiosks and building heads.
//! - A category marked private (助老, 低保, 救助 by default: elderly people living alone, families on
//!   assistance) shows its description, unit, room, notes and outcome only to the worker who
//!   claimed it and to supervisors; everyone else who may see it gets the category, the building
//!   and the timers, enough to claim it. Attachments (a photo, a voice note) go with the
//!   description.
//! - The private code on a resident's slip (`key`) is in no view: the reporting device gets it
//!   once, in the answer to its report. The resident holding it sees `ResidentStatus` and nothing
//!   else.
//! - Anyone, through the city's open interface (Open311), sees `Published`: what kind of problem,
//!   where (to the building), its status and times; never a phone, unit, room, note, reporter or
//!   attachment. Of a private category only its status, category, compound and times.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::community::Community;
use crate::event::{Change, EscalationReason, Event, Role};
use crate::incident::Incident;
use crate::principal::Principal;

/// How much of one incident a viewer may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sight {
    /// Everything but the phone number: supervisors, the holder, and the compound's workers
    /// when the category is not private.
    Full,
    /// A shared screen (a kiosk, a building head): no notes.
    Shared,
    /// A private category seen by someone other than its holder or a supervisor: no
    /// description, unit, room, notes or outcome.
    Restricted,
}

/// How much of `incident` (as it is now) `viewer` may see, or `None` for nothing at all.
pub fn sight(viewer: &Principal, incident: &Incident, community: &Community) -> Option<Sight> {
    let private =
        community.category(&incident.report.category).is_some_and(|category| category.private);
    let holder = incident.holder.as_ref().is_some_and(|h| h.id == viewer.actor.id);
    match viewer.actor.role {
        Role::System => Some(Sight::Full),
        Role::Supervisor if viewer.may_act_in(&incident.report.compound) => Some(Sight::Full),
        Role::Worker if viewer.may_act_in(&incident.report.compound) => {
            Some(if private && !holder { Sight::Restricted } else { Sight::Full })
        }
        Role::BuildingHead if viewer.may_act_in(&incident.report.compound) => {
            Some(if private { Sight::Restricted } else { Sight::Shared })
        }
        Role::Kiosk if incident.reported_by.id == viewer.actor.id => {
            Some(if private { Sight::Restricted } else { Sight::Shared })
        }
        // A platform reads what anyone may (`published`), through Open311.
        Role::Supervisor
        | Role::Worker
        | Role::BuildingHead
        | Role::Kiosk
        | Role::Resident
        | Role::Platform => None,
    }
}

/// Who hears an event's chime (an alert), beside who sees it (`sight`): the on-duty workers of
/// the compound for a new report or a second handling; the assignee of an assignment, on duty
/// or not; the compound's supervisors for an escalation (and, when nobody was on duty, every
/// on-duty worker of the community). `None` when the event rings for nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chime {
    /// An escalation: supervisors hear it too.
    pub escalated: bool,
    /// The workers who hear it, by id.
    workers: BTreeSet<String>,
}

impl Chime {
    /// The chime of `change`; the on-duty workers are asked for only when it rings for them:
    /// the compound's (`on_duty_here`) or the whole community's (`on_duty_anywhere`).
    pub fn of(
        change: &Change,
        on_duty_here: impl FnOnce() -> BTreeSet<String>,
        on_duty_anywhere: impl FnOnce() -> BTreeSet<String>,
    ) -> Option<Chime> {
        let (escalated, workers) = match change {
            // A second handling (二次办理) is a job to take again, like a new report.
            Change::Reported { .. } | Change::Rated { again: Some(_), .. } => {
                (false, on_duty_here())
            }
            // 派单 / 改派: the assignee hears it, on duty or not.
            Change::Assigned { to } => (false, BTreeSet::from([to.id.clone()])),
            Change::Escalated { reason: EscalationReason::NobodyOnDuty } => {
                (true, on_duty_anywhere())
            }
            Change::Escalated { reason: EscalationReason::Unclaimed } => (true, BTreeSet::new()),
            _ => return None,
        };
        Some(Chime { escalated, workers })
    }

    /// Whether `listener` hears it, for an incident of `compound`.
    pub fn heard_by(&self, listener: &Principal, compound: &crate::CompoundId) -> bool {
        match listener.actor.role {
            Role::Supervisor => self.escalated && listener.may_act_in(compound),
            Role::Worker => self.workers.contains(&listener.actor.id),
            Role::BuildingHead | Role::Kiosk | Role::System | Role::Resident | Role::Platform => {
                false
            }
        }
    }
}

/// `138 0000 1234` → `138****1234`; short numbers show nothing.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 8 {
        return "****".into();
    }
    let head: String = digits[..3].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

fn report_as_seen(report: &mut crate::incident::Report, sight: Sight) {
    report.phone = report.phone.as_deref().map(mask_phone);
    if sight == Sight::Restricted {
        report.attachments.clear();
        report.description.clear();
        report.unit.clear();
        report.room.clear();
    }
}

/// The incident as seen with `sight`.
pub fn incident_as_seen(incident: &Incident, sight: Sight) -> Incident {
    let mut view = incident.clone();
    view.key = None;
    report_as_seen(&mut view.report, sight);
    if sight != Sight::Full {
        view.notes.clear();
        // Why the holder asks to send an order back is for the office, like their notes.
        if let Some(asked) = view.send_back.as_mut() {
            asked.reason.clear();
        }
        // How a mediation went is the workers' record, like their notes.
        if let Some(m) = view.mediation.as_mut() {
            m.outcome = None;
        }
    }
    if sight == Sight::Restricted {
        view.outcome = None;
        view.proof = None;
        view.notices.clear();
    }
    view
}

/// The incident as `viewer` may see it, or `None`.
pub fn incident(
    viewer: &Principal,
    incident: &Incident,
    community: &Community,
) -> Option<Incident> {
    sight(viewer, incident, community).map(|s| incident_as_seen(incident, s))
}

/// One event as seen with `sight` by a viewer of `role`, or `None` when it is not theirs to see
/// at all (a note on a shared screen, who looked at a phone number).
pub fn event_as_seen(event: &Event, sight: Sight, role: Role) -> Option<Event> {
    let mut view = event.clone();
    match &mut view.change {
        Change::Reported { report, key, .. } => {
            *key = None;
            report_as_seen(report, sight)
        }
        Change::Noted { .. } if sight != Sight::Full => return None,
        Change::MediationEnded { outcome, .. } if sight != Sight::Full => outcome.clear(),
        // A note for the resident goes where the description goes.
        Change::Told { text } if sight == Sight::Restricted => text.clear(),
        Change::HandedOver { note } | Change::Returned { note } | Change::Urged { note }
            if sight != Sight::Full =>
        {
            note.clear()
        }
        Change::SendBackAsked { reason }
        | Change::SendBackRefused { reason }
        | Change::SentBack { reason }
            if sight != Sight::Full =>
        {
            reason.clear()
        }
        Change::Resolved { outcome, proof } if sight == Sight::Restricted => {
            outcome.clear();
            *proof = None;
        }
        Change::Revealed if role != Role::Supervisor => return None,
        _ => {}
    }
    Some(view)
}

/// The event as `viewer` may see it, judged by the incident's state after it; or `None`.
pub fn event(
    viewer: &Principal,
    event: &Event,
    incident: &Incident,
    community: &Community,
) -> Option<Event> {
    let sight = sight(viewer, incident, community)?;
    event_as_seen(event, sight, viewer.actor.role)
}

/// What anyone may read of an incident through the city's open interface (Open311).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: crate::incident::IncidentId,
    pub category: crate::community::CategoryId,
    pub compound: crate::community::CompoundId,
    /// The building as reported, 公共区域 when none was; `None` for a private category.
    pub building: Option<String>,
    /// `None` for a private category.
    pub description: Option<String>,
    pub status: crate::incident::Status,
    /// What was done once resolved, or why it was cancelled; `None` for a private category.
    pub status_notes: Option<String>,
    pub reported_at: crate::time::Timestamp,
    /// The resolution promised for the handling running now.
    pub resolve_by: crate::time::Timestamp,
}

/// What the public reads of a work order sent back (the platform was told why at its webhook).
pub const SENT_BACK_NOTE: &str = "已退回派单方";

/// The open interface's view of `incident`.
pub fn published(incident: &Incident, community: &Community) -> Published {
    let private =
        community.category(&incident.report.category).is_none_or(|category| category.private);
    let open = |text: &str| (!private).then(|| text.to_owned());
    let status = incident.status;
    let notes = match status {
        crate::incident::Status::Resolved => incident.outcome.as_deref(),
        crate::incident::Status::Cancelled => incident.cancel_reason.as_deref(),
        crate::incident::Status::SentBack => Some(SENT_BACK_NOTE),
        _ => None,
    };
    Published {
        id: incident.id,
        category: incident.report.category.clone(),
        compound: incident.report.compound.clone(),
        building: open(&incident.report.building).map(|b| {
            if b.trim().is_empty() { crate::community::PUBLIC_AREA.to_owned() } else { b }
        }),
        description: open(&incident.report.description),
        status,
        status_notes: notes.and_then(open),
        reported_at: incident.reported_at,
        resolve_by: incident.resolve_by,
    }
}

/// What the resident holding the slip sees of their report on the status page: where it is and
/// who has it, what was done, and whether they may still rate it. No phone, room, notes or
/// attachments: the page is opened by whoever holds the slip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResidentStatus {
    pub ticket: crate::incident::Ticket,
    pub category: crate::community::CategoryId,
    pub compound: crate::community::CompoundId,
    pub building: String,
    pub status: crate::incident::Status,
    pub reported_at: crate::time::Timestamp,
    pub claimed_at: Option<crate::time::Timestamp>,
    pub resolved_at: Option<crate::time::Timestamp>,
    /// What the office promised for the handling running now: a first response (a grid worker
    /// in touch) by this time, and a resolution by the next. The pages word the promise from
    /// these ("网格员将在 30 分钟内联系您"), as they do on the kiosk's ticket.
    pub respond_by: crate::time::Timestamp,
    pub resolve_by: crate::time::Timestamp,
    /// The grid worker who took it (a name the resident may call the office about).
    pub holder: Option<String>,
    /// What was done, once resolved.
    pub outcome: Option<String>,
    /// The answer to 满意吗？ for the current handling, once given.
    pub rating: Option<crate::incident::Rating>,
    /// Which handling: 0 the first, 1 or more after the resident said "not solved" (二次办理).
    pub round: u32,
    /// Notes for the resident, oldest first: when, who (their name), what.
    pub notices: Vec<ResidentNotice>,
}

/// A note for the resident as their status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResidentNotice {
    pub at: crate::time::Timestamp,
    pub by: String,
    pub text: String,
}

/// The status page's view of `incident`.
pub fn resident_status(incident: &Incident) -> ResidentStatus {
    let status = incident.status;
    ResidentStatus {
        ticket: incident.ticket.clone(),
        category: incident.report.category.clone(),
        compound: incident.report.compound.clone(),
        building: incident.report.building.clone(),
        status,
        reported_at: incident.reported_at,
        // Claimed in the handling running now (a second handling waits for its own claim).
        claimed_at: incident.claimed_at.filter(|_| incident.holder.is_some()),
        resolved_at: incident.resolved_at,
        respond_by: incident.respond_by,
        resolve_by: incident.resolve_by,
        holder: incident.holder.as_ref().map(|h| h.name.clone()),
        outcome: incident.outcome.clone().filter(|_| status == crate::incident::Status::Resolved),
        rating: incident.rating,
        round: incident.round,
        notices: incident
            .notices
            .iter()
            .map(|n| ResidentNotice { at: n.at, by: n.by.name.clone(), text: n.text.clone() })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::{Category, CategoryId, CompoundId, Urgency};
    use crate::event::{Actor, EscalationReason, Timer};
    use crate::incident::Rating;
    use crate::incident::{IncidentId, Note, Report, Status, Ticket};
    use crate::lifecycle::Scope;
    use crate::time::Timestamp;
    use proptest::prelude::*;

    const PHONE: &str = "13812345678";
    const DESCRIPTION: &str = "DESC-SECRET";
    const ROOM: &str = "ROOM-SECRET";
    const NOTE: &str = "NOTE-SECRET";
    const OUTCOME: &str = "OUTCOME-SECRET";
    const KEY: &str = "KEY-SECRET";
    /// A photo's name (its hash): for those who may see the description.
    const PHOTO: &str = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface";

    fn community() -> Community {
        Community::sample(
            &["c1", "c2"],
            vec![Category::sample("repair", false), Category::sample("elderly", true)],
        )
    }

    fn actor(id: &str, role: Role) -> Actor {
        Actor { id: id.into(), name: id.into(), role }
    }

    fn report(category: &str) -> Report {
        Report {
            compound: CompoundId("c1".into()),
            category: CategoryId(category.into()),
            urgency: Urgency::Normal,
            building: "3号楼".into(),
            unit: "2单元".into(),
            room: ROOM.into(),
            description: DESCRIPTION.into(),
            phone: Some(PHONE.into()),
            attachments: vec![crate::Attachment {
                id: PHOTO.into(),
                kind: crate::AttachmentKind::Photo,
                mime: "image/jpeg".into(),
                bytes: 1,
            }],
            order: None,
        }
    }

    fn incident(category: &str, status: Status, holder: Option<&str>) -> Incident {
        Incident {
            id: IncidentId(1),
            ticket: Ticket("0001".into()),
            report: report(category),
            request_id: "r".into(),
            reported_by: actor("kiosk-1", Role::Kiosk),
            reported_at: Timestamp(0),
            status,
            holder: holder.map(|h| actor(h, Role::Worker)),
            claimed_at: None,
            resolved_at: None,
            outcome: Some(OUTCOME.into()),
            cancel_reason: None,
            respond_by: Timestamp(1),
            resolve_by: Timestamp(2),
            response_breached: false,
            resolution_breached: false,
            escalated: false,
            escalate_by: None,
            escalated_unclaimed: false,
            rating: None,
            round: 0,
            answers: Vec::new(),
            earlier_breaches: 0,
            first_respond_by: None,
            pause: None,
            pauses: Vec::new(),
            paused_ms: 0,
            recurring: Vec::new(),
            notices: Vec::new(),
            mediation: None,
            key: Some(KEY.into()),
            proof: None,
            urges: 0,
            send_back: Some(crate::incident::SendBack {
                reason: NOTE.into(),
                asked_by: actor("w1", Role::Worker),
                asked_at: Timestamp(1),
            }),
            notes: vec![Note {
                at: Timestamp(1),
                by: actor("w1", Role::Worker),
                text: NOTE.into(),
            }],
            last_seq: 1,
        }
    }

    /// Every kind of change, carrying the secrets where it can.
    fn changes(category: &str) -> Vec<Change> {
        vec![
            Change::Reported {
                ticket: Ticket("0001".into()),
                report: Box::new(report(category)),
                request_id: "r".into(),
                respond_by: Timestamp(1),
                resolve_by: Timestamp(2),
                escalate_by: None,
                key: Some(KEY.into()),
                recurring: Vec::new(),
            },
            Change::Claimed,
            Change::Noted { text: NOTE.into() },
            Change::Assigned { to: actor("w2", Role::Worker) },
            Change::Urged { note: NOTE.into() },
            Change::HandedOver { note: NOTE.into() },
            Change::Returned { note: NOTE.into() },
            Change::Resolved {
                outcome: OUTCOME.into(),
                proof: Some(crate::Attachment {
                    id: PHOTO.into(),
                    kind: crate::AttachmentKind::Photo,
                    mime: "image/jpeg".into(),
                    bytes: 1,
                }),
            },
            Change::Reopened { reason: "x".into(), resolve_by: Timestamp(3) },
            Change::Cancelled { reason: "x".into() },
            Change::Rated { rating: Rating::Satisfied, solved: true, again: None },
            Change::Escalated { reason: EscalationReason::NobodyOnDuty },
            Change::Escalated { reason: EscalationReason::Unclaimed },
            Change::Revealed,
            Change::Breached { timer: Timer::Response, deadline: Timestamp(1) },
            Change::SendBackAsked { reason: NOTE.into() },
            Change::SendBackRefused { reason: NOTE.into() },
            Change::SentBack { reason: NOTE.into() },
        ]
    }

    /// Every kind of viewer.
    fn viewers() -> Vec<Principal> {
        let p = |id: &str, role, compounds: &[&str]| Principal {
            actor: actor(id, role),
            scope: if role == Role::Supervisor {
                Scope::All
            } else {
                Scope::Compounds(compounds.iter().map(|c| CompoundId((*c).into())).collect())
            },
        };
        vec![
            p("boss", Role::Supervisor, &[]),
            p("w1", Role::Worker, &["c1"]),
            p("w2", Role::Worker, &["c1"]),
            p("w3", Role::Worker, &["c2"]),
            p("head", Role::BuildingHead, &["c1"]),
            p("head2", Role::BuildingHead, &["c2"]),
            p("kiosk-1", Role::Kiosk, &["c1"]),
            p("kiosk-2", Role::Kiosk, &["c1"]),
            Principal::resident(),
        ]
    }

    /// Who hears each kind of chime, among every kind of viewer.
    #[test]
    fn a_chime_is_heard_by_the_workers_it_names_and_supervisors_of_escalations() {
        let here = || BTreeSet::from(["w1".to_owned()]);
        let anywhere = || BTreeSet::from(["w1".to_owned(), "w3".to_owned()]);
        let c1 = CompoundId("c1".into());
        let hearing = |change: &Change| -> Vec<String> {
            let chime = Chime::of(change, here, anywhere);
            let heard = |v: &&Principal| chime.as_ref().is_some_and(|c| c.heard_by(v, &c1));
            viewers().iter().filter(heard).map(|v| v.actor.id.clone()).collect()
        };
        let reported = changes("repair").remove(0);
        assert!(matches!(reported, Change::Reported { .. }));
        assert_eq!(hearing(&reported), ["w1"]);
        let assigned = Change::Assigned { to: actor("w2", Role::Worker) };
        assert_eq!(hearing(&assigned), ["w2"], "on duty or not");
        let nobody = Change::Escalated { reason: EscalationReason::NobodyOnDuty };
        assert_eq!(hearing(&nobody), ["boss", "w1", "w3"]);
        let unclaimed = Change::Escalated { reason: EscalationReason::Unclaimed };
        assert_eq!(hearing(&unclaimed), ["boss"]);
        assert_eq!(hearing(&Change::Claimed), Vec::<String>::new());
    }

    /// The open interface shows no phone, room, unit, code, note, reporter or attachment of
    /// anything, and of a private category not the words either.
    #[test]
    fn the_public_sees_the_problem_not_the_people() {
        let c = community();
        for status in [
            Status::Reported,
            Status::Claimed,
            Status::Resolved,
            Status::Cancelled,
            Status::SentBack,
        ] {
            for category in ["repair", "elderly"] {
                let mut state = incident(category, status, Some("w1"));
                state.cancel_reason = Some(OUTCOME.into());
                state.report.unit = "UNIT-SECRET".into();
                let seen = format!("{:?}", super::published(&state, &c));
                for secret in [PHONE, ROOM, "UNIT-SECRET", KEY, NOTE, PHOTO, "kiosk-1", "w1"] {
                    assert!(!seen.contains(secret), "{status:?} {category}: {seen}");
                }
                let private = category == "elderly";
                assert_eq!(seen.contains(DESCRIPTION), !private, "{seen}");
                let closed = matches!(status, Status::Resolved | Status::Cancelled);
                assert_eq!(seen.contains(OUTCOME), closed && !private, "{seen}");
            }
        }
    }

    fn shown(value: &impl serde::Serialize) -> String {
        serde_json::to_string(value).unwrap()
    }

    proptest! {
        #[test]
        fn each_viewer_sees_only_what_the_rule_allows(
            private in any::<bool>(),
            status in prop::sample::select(vec![Status::Reported, Status::Claimed, Status::HandedOver, Status::Resolved, Status::Cancelled, Status::SentBack]),
            holder in prop::sample::select(vec![None, Some("w1"), Some("w2")]),
            change in 0usize..18,
            viewer in 0usize..9,
        ) {
            let category = if private { "elderly" } else { "repair" };
            let state = incident(category, status, holder);
            let who = &viewers()[viewer];
            let change = changes(category)[change].clone();
            let event = Event { seq: 2, at: Timestamp(1), incident: state.id, actor: actor("w1", Role::Worker), change };
            let c = community();
            let seen_incident = super::incident(who, &state, &c);
            let seen_event = super::event(who, &event, &state, &c);
            let role = who.actor.role;
            let in_scope = match role {
                Role::Kiosk => who.actor.id == "kiosk-1",
                // The resident sees their status page (`resident_status`), never an incident.
                Role::Resident => false,
                _ => who.may_act_in(&state.report.compound),
            };
            // Out of scope: nothing at all.
            prop_assert_eq!(seen_incident.is_some(), in_scope);
            if !in_scope {
                prop_assert!(seen_event.is_none());
                return Ok(());
            }
            let text = format!("{}{}", shown(&seen_incident), shown(&seen_event));
            // Never the phone number in full, nor the slip's code, to anyone.
            prop_assert!(!text.contains(PHONE), "{}", text);
            prop_assert!(!text.contains(KEY), "{}", text);
            let full = role == Role::Supervisor
                || (role == Role::Worker && (!private || holder == Some(who.actor.id.as_str())));
            if !full {
                prop_assert!(!text.contains(NOTE), "{:?} saw a note: {}", role, text);
            }
            if private && !full {
                for secret in [DESCRIPTION, ROOM, OUTCOME, PHOTO] {
                    prop_assert!(!text.contains(secret), "{:?} saw {}: {}", role, secret, text);
                }
            }
            if full {
                prop_assert!(shown(&seen_incident).contains(DESCRIPTION));
            }
            if matches!(event.change, Change::Revealed) {
                prop_assert_eq!(seen_event.is_some(), role == Role::Supervisor);
            }
            if matches!(event.change, Change::Noted { .. }) {
                prop_assert_eq!(seen_event.is_some(), full);
            }
        }
    }

    #[test]
    fn the_resident_sees_status_who_and_outcome_but_no_personal_details() {
        let status = shown(&resident_status(&incident("elderly", Status::Resolved, Some("w1"))));
        for secret in [PHONE, ROOM, NOTE, KEY, PHOTO, DESCRIPTION] {
            assert!(!status.contains(secret), "{secret} in {status}");
        }
        assert!(status.contains(OUTCOME) && status.contains("\"holder\":\"w1\""), "{status}");
        let open = shown(&resident_status(&incident("repair", Status::Claimed, Some("w1"))));
        assert!(!open.contains(OUTCOME), "no outcome before it is resolved: {open}");
    }

    #[test]
    fn a_phone_number_is_masked_to_its_first_three_and_last_four_digits() {
        assert_eq!(mask_phone("138 1234 5678"), "138****5678");
        assert_eq!(mask_phone("12345"), "****");
    }
}
