//! The rules of the incident lifecycle: who may do what, and in which state.
//!
//! `decide` turns a request into the `Change` to log, or a typed refusal; `Incident::apply` then
//! folds the logged event into the state. Keeping the two apart lets the log be replayed without
//! re-checking permissions that held when the event was written.

use serde::{Deserialize, Serialize};

use crate::community::{Community, CompoundId};
use crate::error::ErrorCode;
use crate::event::{Actor, Change, Role};
pub use crate::incident::Deadlines;
use crate::incident::{Incident, Report, Status};
pub use crate::principal::{Principal, Scope};
use crate::time::Timestamp;

/// Longest description, note, outcome or reason, in characters: a few lines, not a document.
pub const MAX_TEXT_CHARS: usize = 500;
/// Longest building, unit or room field, in characters.
pub const MAX_PLACE_CHARS: usize = 20;
/// Most notes one incident takes, and most characters of notes in all: one script cannot make
/// an incident (and every frame that carries it) grow without end, and the largest stored
/// incident stays well under the size sled writes as a separate, never-fsynced blob.
pub const MAX_NOTES: usize = 20;
pub const MAX_NOTES_CHARS: usize = 4000;
/// Most pauses (挂起) one incident may ask for: each needs a supervisor's look.
pub const MAX_PAUSES: usize = 5;

/// A change a person asks for on an existing incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Claim,
    Note {
        text: String,
    },
    HandOver {
        note: String,
    },
    Return {
        note: String,
    },
    Resolve {
        outcome: String,
        /// A photo of the result (影像证明).
        proof: Option<crate::Attachment>,
    },
    Reopen {
        reason: String,
    },
    Cancel {
        reason: String,
    },
    /// The resident's answer after 办结 (解决了吗？满意吗？): from the resident holding the
    /// incident's key (the status page, or the kiosk that took the report), or recorded by a
    /// building head or supervisor who asked them (回访). Not solved starts a second handling.
    Rate {
        rating: crate::incident::Rating,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default = "yes")]
        solved: bool,
    },
    /// Show the resident's phone number to the one who asks; logged.
    Reveal,
    /// 派单 / 改派 to a worker of the incident's compound (a supervisor).
    Assign {
        to: Principal,
    },
    /// 督办 (a supervisor).
    Urge {
        note: String,
    },
    /// 调解: the holder (or a supervisor) hands a dispute to a building head of its compound.
    Mediate {
        to: Principal,
    },
    /// The mediating building head reports how it went (or the holder or a supervisor takes it
    /// back, not settled).
    EndMediation {
        outcome: String,
        settled: bool,
    },
    /// A note for the resident, shown on their status page: a building head of its compound, a
    /// worker or a supervisor.
    Tell {
        text: String,
    },
    /// 挂起: the holder asks to pause the resolution clock, with one of the configured reasons.
    Pause {
        reason: String,
    },
    /// A supervisor approves or refuses the pause asked for.
    DecidePause {
        approve: bool,
    },
    /// The holder (or a supervisor) ends a running pause: the clock runs again.
    Resume,
    /// 退单 of a work order from above: the holder asks a supervisor (with a reason for them);
    /// a supervisor sends it back to its platform (with the reason the platform is told).
    SendBack {
        reason: String,
    },
    /// A supervisor keeps a work order the holder asked to send back, telling them why.
    RefuseSendBack {
        reason: String,
    },
}

fn yes() -> bool {
    true
}

/// Why a request was refused. Each has a stable `code` for the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("a {role:?} may not {what}")]
    RoleNotAllowed { role: Role, what: &'static str },
    #[error("the incident belongs to compound {0:?}, outside this account's compounds")]
    OtherCompound(CompoundId),
    #[error("unknown compound {0:?}")]
    UnknownCompound(CompoundId),
    #[error("unknown category {0:?}")]
    UnknownCategory(String),
    #[error("already claimed by {}", .holder.name)]
    AlreadyClaimed { holder: Actor },
    #[error("not claimed yet: claim it first")]
    NotClaimed,
    #[error("held by {}: only the holder or a supervisor may do this", .holder.name)]
    NotHolder { holder: Actor },
    #[error("already with the street office")]
    AlreadyHandedOver,
    #[error("not with the street office")]
    NotHandedOver,
    #[error("already resolved")]
    AlreadyResolved,
    #[error("not resolved, so it cannot be reopened")]
    NotResolved,
    #[error("cancelled: nothing more can be done with it")]
    Cancelled,
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("already rated")]
    AlreadyRated,
    #[error("a phone number has 5 to 20 digits, and may have spaces, dashes or a leading +")]
    BadPhone,
    #[error(
        "this incident has all the notes it can take ({MAX_NOTES} notes, {MAX_NOTES_CHARS} characters)"
    )]
    TooManyNotes,
    #[error("this incident has no phone number")]
    NoPhone,
    #[error("the slip's code (or the phone number's last four digits) is needed, and must match")]
    WrongKey,
    #[error("a kiosk report says where: a building, or 公共区域")]
    NoPlace,
    #[error("attachments: at most one photo and one voice note, each uploaded first")]
    BadAttachments,
    #[error("an incident is assigned to an active grid worker of its compound")]
    NotAWorkerHere,
    #[error("a pause is asked for with one of the community's reasons")]
    UnknownPauseReason,
    #[error("a pause is already asked for or running")]
    AlreadyPaused,
    #[error("no pause is waiting for a decision or running")]
    NotPaused,
    #[error("this incident has been paused as often as it may be ({MAX_PAUSES} times)")]
    TooManyPauses,
    #[error("this category is not one a building head mediates")]
    NotMediable,
    #[error("a mediation goes to an active building head of the incident's compound")]
    NotABuildingHeadHere,
    #[error("a building head is mediating it already")]
    AlreadyMediating,
    #[error("no mediation is running")]
    NotMediating,
    #[error("a 回访 comes once the resident has had their time to answer (callback_after)")]
    TooEarlyForCallback,
    #[error("only a work order from above (上级派单) is sent back")]
    NotAnOrder,
    #[error("sending it back is already asked for: a supervisor decides")]
    SendBackAsked,
    #[error("nobody asked to send it back")]
    NoSendBack,
    #[error("sent back to its platform: nothing more can be done with it here")]
    SentBack,
}

impl LifecycleError {
    /// The stable code clients switch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            LifecycleError::RoleNotAllowed { .. } => ErrorCode::Forbidden,
            LifecycleError::OtherCompound(_) => ErrorCode::OtherCompound,
            LifecycleError::UnknownCompound(_) => ErrorCode::UnknownCompound,
            LifecycleError::UnknownCategory(_) => ErrorCode::UnknownCategory,
            LifecycleError::AlreadyClaimed { .. } => ErrorCode::AlreadyClaimed,
            LifecycleError::NotClaimed => ErrorCode::NotClaimed,
            LifecycleError::NotHolder { .. } => ErrorCode::NotHolder,
            LifecycleError::AlreadyHandedOver => ErrorCode::AlreadyHandedOver,
            LifecycleError::NotHandedOver => ErrorCode::NotHandedOver,
            LifecycleError::AlreadyResolved => ErrorCode::AlreadyResolved,
            LifecycleError::NotResolved => ErrorCode::NotResolved,
            LifecycleError::Cancelled => ErrorCode::Cancelled,
            LifecycleError::Empty { .. } => ErrorCode::EmptyField,
            LifecycleError::TooLong { .. } => ErrorCode::TooLong,
            LifecycleError::AlreadyRated => ErrorCode::AlreadyRated,
            LifecycleError::BadPhone => ErrorCode::BadPhone,
            LifecycleError::TooManyNotes => ErrorCode::TooManyNotes,
            LifecycleError::NoPhone => ErrorCode::NoPhone,
            LifecycleError::WrongKey => ErrorCode::WrongKey,
            LifecycleError::NoPlace => ErrorCode::NoPlace,
            LifecycleError::BadAttachments => ErrorCode::BadAttachments,
            LifecycleError::NotAWorkerHere => ErrorCode::NotAWorkerHere,
            LifecycleError::UnknownPauseReason => ErrorCode::UnknownPauseReason,
            LifecycleError::AlreadyPaused => ErrorCode::AlreadyPaused,
            LifecycleError::NotPaused => ErrorCode::NotPaused,
            LifecycleError::TooManyPauses => ErrorCode::TooManyPauses,
            LifecycleError::NotMediable => ErrorCode::NotMediable,
            LifecycleError::NotABuildingHeadHere => ErrorCode::NotABuildingHeadHere,
            LifecycleError::AlreadyMediating => ErrorCode::AlreadyMediating,
            LifecycleError::NotMediating => ErrorCode::NotMediating,
            LifecycleError::TooEarlyForCallback => ErrorCode::TooEarlyForCallback,
            LifecycleError::NotAnOrder => ErrorCode::NotAnOrder,
            LifecycleError::SendBackAsked => ErrorCode::SendBackAsked,
            LifecycleError::NoSendBack => ErrorCode::NoSendBack,
            LifecycleError::SentBack => ErrorCode::SentBack,
        }
    }

    /// Who holds the incident, when that is why the request was refused.
    pub fn holder(&self) -> Option<&Actor> {
        match self {
            LifecycleError::AlreadyClaimed { holder } | LifecycleError::NotHolder { holder } => {
                Some(holder)
            }
            _ => None,
        }
    }
}

/// Checks a new report and returns its deadlines.
pub fn check_report(
    who: &Principal,
    report: &Report,
    community: &Community,
    now: Timestamp,
) -> Result<Deadlines, LifecycleError> {
    if who.actor.role == Role::System {
        return Err(LifecycleError::RoleNotAllowed { role: Role::System, what: "report" });
    }
    if community.compound(&report.compound).is_none() {
        return Err(LifecycleError::UnknownCompound(report.compound.clone()));
    }
    if !who.may_act_in(&report.compound) {
        return Err(LifecycleError::OtherCompound(report.compound.clone()));
    }
    if community.category(&report.category).is_none_or(|c| c.retired) {
        return Err(LifecycleError::UnknownCategory(report.category.0.clone()));
    }
    text(&report.description, "description")?;
    if who.actor.role == Role::Kiosk && report.building.trim().is_empty() {
        return Err(LifecycleError::NoPlace);
    }
    check_attachments(&report.attachments)?;
    for (value, field) in
        [(&report.building, "building"), (&report.unit, "unit"), (&report.room, "room")]
    {
        if value.chars().count() > MAX_PLACE_CHARS {
            return Err(LifecycleError::TooLong { field, max: MAX_PLACE_CHARS });
        }
    }
    if let Some(phone) = &report.phone {
        check_phone(phone)?;
    }
    if let Some(order) = &report.order {
        // Only another system's key, through Open311, gives work orders.
        if who.actor.role != Role::Platform || order.key != who.actor.id {
            return Err(LifecycleError::RoleNotAllowed { role: who.actor.role, what: "order" });
        }
        let id = order.external_id.trim();
        if id.is_empty() || id.chars().count() > MAX_EXTERNAL_ID_CHARS {
            return Err(LifecycleError::TooLong {
                field: "external_id",
                max: MAX_EXTERNAL_ID_CHARS,
            });
        }
    }
    deadlines(report, community, now)
}

/// The longest number a platform gives its work order.
pub const MAX_EXTERNAL_ID_CHARS: usize = 64;

/// The clocks of a handling of `report` that starts at `now`, from its category and urgency.
fn deadlines(
    report: &Report,
    community: &Community,
    now: Timestamp,
) -> Result<Deadlines, LifecycleError> {
    let category = community
        .category(&report.category)
        .ok_or_else(|| LifecycleError::UnknownCategory(report.category.0.clone()))?;
    let target = category.targets.for_urgency(report.urgency);
    let unclaimed_after = community.escalation.unclaimed_after.min(target.respond);
    let resolve_by = now.plus(target.resolve);
    // A work order's own deadline, while it lies ahead, is the one the office answers to.
    let due = report.order.as_ref().and_then(|o| o.due).filter(|due| *due > now);
    let resolve_by = due.unwrap_or(resolve_by);
    Ok(Deadlines {
        respond_by: now.plus(target.respond).min(resolve_by),
        resolve_by,
        escalate_by: now.plus(unclaimed_after).min(resolve_by),
    })
}

fn check_attachments(attachments: &[crate::Attachment]) -> Result<(), LifecycleError> {
    use crate::AttachmentKind::{Photo, Voice};
    let count = |kind| attachments.iter().filter(|a| a.kind == kind).count();
    let named = attachments.iter().all(|a| {
        a.id.len() == 64
            && a.id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && a.mime.len() <= 40
    });
    if named && count(Photo) <= 1 && count(Voice) <= 1 {
        Ok(())
    } else {
        Err(LifecycleError::BadAttachments)
    }
}

fn check_phone(phone: &str) -> Result<(), LifecycleError> {
    let body = phone.strip_prefix('+').unwrap_or(phone);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    let allowed = body.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
    if allowed && (5..=20).contains(&digits) { Ok(()) } else { Err(LifecycleError::BadPhone) }
}

fn text(value: &str, field: &'static str) -> Result<(), LifecycleError> {
    if value.trim().is_empty() {
        Err(LifecycleError::Empty { field })
    } else if value.chars().count() > MAX_TEXT_CHARS {
        Err(LifecycleError::TooLong { field, max: MAX_TEXT_CHARS })
    } else {
        Ok(())
    }
}

/// Decides whether `who` may apply `action` to `incident` now, and if so what to log.
pub fn decide(
    incident: &Incident,
    who: &Principal,
    action: &Action,
    now: Timestamp,
    community: &Community,
) -> Result<Change, LifecycleError> {
    let role = who.actor.role;
    if let Action::Rate { rating, key, solved } = action {
        let answer = rate(incident, who, *rating, key.as_deref(), now, community)?;
        if *solved {
            return Ok(answer);
        }
        let again = deadlines(&incident.report, community, now)?;
        return Ok(Change::Rated { rating: *rating, solved: false, again: Some(again) });
    }
    if let Action::Reveal = action {
        return reveal(incident, who, community);
    }
    if let Action::Tell { text: note } = action {
        return tell(incident, who, note);
    }
    let mediating = incident.mediation.as_ref().filter(|m| m.running());
    if let (Action::EndMediation { outcome, settled }, Some(m)) = (action, mediating)
        && m.head.id == who.actor.id
        && role == Role::BuildingHead
    {
        text(outcome, "outcome")?;
        return Ok(Change::MediationEnded { outcome: outcome.clone(), settled: *settled });
    }
    if !matches!(role, Role::Worker | Role::Supervisor)
        || (matches!(
            action,
            Action::Assign { .. }
                | Action::Urge { .. }
                | Action::DecidePause { .. }
                | Action::RefuseSendBack { .. }
        ) && !who.is_supervisor())
    {
        return Err(LifecycleError::RoleNotAllowed { role, what: action_name(action) });
    }
    if !who.may_act_in(&incident.report.compound) {
        return Err(LifecycleError::OtherCompound(incident.report.compound.clone()));
    }
    withdrawn(incident)?;
    // Hand-over, return, resolve and cancel of a claimed incident belong to its holder; a
    // supervisor may step in for an absent worker.
    let holder_only = || match &incident.holder {
        Some(holder) if holder.id != who.actor.id && !who.is_supervisor() => {
            Err(LifecycleError::NotHolder { holder: holder.clone() })
        }
        _ => Ok(()),
    };
    let open_and_claimed = || match incident.status {
        Status::Reported => Err(LifecycleError::NotClaimed),
        Status::Resolved => Err(LifecycleError::AlreadyResolved),
        _ => holder_only(),
    };
    match action {
        Action::Claim => match (incident.status, &incident.holder) {
            (Status::Reported, _) => Ok(Change::Claimed),
            (Status::Resolved, _) => Err(LifecycleError::AlreadyResolved),
            (_, Some(holder)) => Err(LifecycleError::AlreadyClaimed { holder: holder.clone() }),
            (_, None) => Err(LifecycleError::NotClaimed),
        },
        Action::Note { text: note } => {
            text(note, "note")?;
            let chars: usize = incident.notes.iter().map(|n| n.text.chars().count()).sum();
            if incident.notes.len() >= MAX_NOTES || chars + note.chars().count() > MAX_NOTES_CHARS {
                return Err(LifecycleError::TooManyNotes);
            }
            Ok(Change::Noted { text: note.clone() })
        }
        Action::HandOver { note } => {
            text(note, "note")?;
            if incident.status == Status::HandedOver {
                return Err(LifecycleError::AlreadyHandedOver);
            }
            open_and_claimed()?;
            Ok(Change::HandedOver { note: note.clone() })
        }
        Action::Return { note } => {
            text(note, "note")?;
            if incident.status != Status::HandedOver {
                return Err(LifecycleError::NotHandedOver);
            }
            holder_only()?;
            Ok(Change::Returned { note: note.clone() })
        }
        Action::Resolve { outcome, proof } => {
            text(outcome, "outcome")?;
            if proof.as_ref().is_some_and(|p| p.kind != crate::AttachmentKind::Photo) {
                return Err(LifecycleError::BadAttachments);
            }
            check_attachments(proof.as_slice())?;
            open_and_claimed()?;
            Ok(Change::Resolved { outcome: outcome.clone(), proof: proof.clone() })
        }
        Action::Reopen { reason } => {
            text(reason, "reason")?;
            if incident.status != Status::Resolved {
                return Err(LifecycleError::NotResolved);
            }
            let target = community
                .category(&incident.report.category)
                .ok_or_else(|| LifecycleError::UnknownCategory(incident.report.category.0.clone()))?
                .targets
                .for_urgency(incident.report.urgency);
            Ok(Change::Reopened { reason: reason.clone(), resolve_by: now.plus(target.resolve) })
        }
        Action::Cancel { reason } => {
            text(reason, "reason")?;
            if incident.status == Status::Resolved {
                return Err(LifecycleError::AlreadyResolved);
            }
            holder_only()?;
            Ok(Change::Cancelled { reason: reason.clone() })
        }
        Action::Assign { to } => {
            if to.actor.role != Role::Worker || !to.may_act_in(&incident.report.compound) {
                return Err(LifecycleError::NotAWorkerHere);
            }
            match (incident.status, &incident.holder) {
                (Status::Resolved, _) => Err(LifecycleError::AlreadyResolved),
                (_, Some(holder)) if holder.id == to.actor.id && incident.status.is_open() => {
                    Err(LifecycleError::AlreadyClaimed { holder: holder.clone() })
                }
                _ => Ok(Change::Assigned { to: to.actor.clone() }),
            }
        }
        Action::Urge { note } => {
            text(note, "note")?;
            if incident.status == Status::Resolved {
                return Err(LifecycleError::AlreadyResolved);
            }
            Ok(Change::Urged { note: note.clone() })
        }
        Action::Mediate { to } => {
            open_and_claimed()?;
            let category = community.category(&incident.report.category);
            let Some(limit) = category.and_then(|c| c.mediation) else {
                return Err(LifecycleError::NotMediable);
            };
            if to.actor.role != Role::BuildingHead || !to.may_act_in(&incident.report.compound) {
                return Err(LifecycleError::NotABuildingHeadHere);
            }
            if mediating.is_some() {
                return Err(LifecycleError::AlreadyMediating);
            }
            Ok(Change::MediationStarted { head: to.actor.clone(), due: now.plus(limit) })
        }
        Action::EndMediation { outcome, .. } => {
            text(outcome, "outcome")?;
            open_and_claimed()?;
            if mediating.is_none() {
                return Err(LifecycleError::NotMediating);
            }
            // Taken back by the holder or a supervisor: not settled by the building head.
            Ok(Change::MediationEnded { outcome: outcome.clone(), settled: false })
        }
        Action::Pause { reason } => {
            open_and_claimed()?;
            if incident.pause.is_some() {
                return Err(LifecycleError::AlreadyPaused);
            }
            if !community.pauses.reasons.contains(reason) {
                return Err(LifecycleError::UnknownPauseReason);
            }
            if incident.pauses.len() >= MAX_PAUSES {
                return Err(LifecycleError::TooManyPauses);
            }
            Ok(Change::PauseAsked { reason: reason.clone() })
        }
        Action::DecidePause { approve } => {
            if !incident.status.is_open() {
                return Err(LifecycleError::AlreadyResolved);
            }
            match &incident.pause {
                Some(p) if p.decided_by.is_none() => Ok(Change::PauseDecided {
                    approved: *approve,
                    until: approve.then(|| now.plus(community.pauses.limit)),
                }),
                _ => Err(LifecycleError::NotPaused),
            }
        }
        Action::Resume => {
            open_and_claimed()?;
            match &incident.pause {
                Some(p) if p.active() => Ok(Change::Resumed),
                _ => Err(LifecycleError::NotPaused),
            }
        }
        Action::SendBack { reason } => {
            text(reason, "reason")?;
            if incident.report.order.is_none() {
                return Err(LifecycleError::NotAnOrder);
            }
            if incident.status == Status::Resolved {
                return Err(LifecycleError::AlreadyResolved);
            }
            // A supervisor sends it back (whoever holds it, or nobody yet); the holder asks one.
            if who.is_supervisor() {
                return Ok(Change::SentBack { reason: reason.clone() });
            }
            open_and_claimed()?;
            if incident.send_back.is_some() {
                return Err(LifecycleError::SendBackAsked);
            }
            Ok(Change::SendBackAsked { reason: reason.clone() })
        }
        Action::RefuseSendBack { reason } => {
            text(reason, "reason")?;
            if !incident.status.is_open() {
                return Err(LifecycleError::AlreadyResolved);
            }
            if incident.send_back.is_none() {
                return Err(LifecycleError::NoSendBack);
            }
            Ok(Change::SendBackRefused { reason: reason.clone() })
        }
        Action::Rate { .. } | Action::Reveal | Action::Tell { .. } => {
            unreachable_action(role, action)
        }
    }
}

/// Nothing more is done with an incident cancelled or sent back.
fn withdrawn(incident: &Incident) -> Result<(), LifecycleError> {
    match incident.status {
        Status::Cancelled => Err(LifecycleError::Cancelled),
        Status::SentBack => Err(LifecycleError::SentBack),
        _ => Ok(()),
    }
}

/// Rate and reveal are decided before the match above; this keeps the match exhaustive.
fn unreachable_action(role: Role, action: &Action) -> Result<Change, LifecycleError> {
    Err(LifecycleError::RoleNotAllowed { role, what: action_name(action) })
}

/// The phone number, to whoever may see the incident in full (its holder, a supervisor, a
/// worker of its compound when its category is not private), never to a shared screen.
fn reveal(
    incident: &Incident,
    who: &Principal,
    community: &Community,
) -> Result<Change, LifecycleError> {
    let role = who.actor.role;
    if !matches!(role, Role::Worker | Role::Supervisor) {
        return Err(LifecycleError::RoleNotAllowed { role, what: "see the phone number" });
    }
    match crate::view::sight(who, incident, community) {
        Some(crate::view::Sight::Full) => {}
        Some(_) => {
            return Err(LifecycleError::RoleNotAllowed { role, what: "see this phone number" });
        }
        None => return Err(LifecycleError::OtherCompound(incident.report.compound.clone())),
    }
    if incident.report.phone.is_none() {
        return Err(LifecycleError::NoPhone);
    }
    Ok(Change::Revealed)
}

/// The resident's answer, once per handling, after resolution: the resident with the incident's
/// key (on the status page, or at the kiosk that took the report), or a building head or
/// supervisor of its compound who asks them (回访). A ticket number alone answers nothing; the
/// worker who did the work does not answer for the resident.
fn rate(
    incident: &Incident,
    who: &Principal,
    rating: crate::incident::Rating,
    key: Option<&str>,
    now: Timestamp,
    community: &Community,
) -> Result<Change, LifecycleError> {
    let allowed = match who.actor.role {
        // Another kiosk's ticket is not this kiosk's to try codes on.
        Role::Kiosk if incident.reported_by.id != who.actor.id => false,
        Role::Kiosk | Role::Resident if !holds_key(incident, key) => {
            return Err(LifecycleError::WrongKey);
        }
        Role::Kiosk | Role::Resident => true,
        Role::BuildingHead | Role::Supervisor => who.may_act_in(&incident.report.compound),
        role => return Err(LifecycleError::RoleNotAllowed { role, what: "rate" }),
    };
    if !allowed {
        return Err(LifecycleError::OtherCompound(incident.report.compound.clone()));
    }
    // 回访 is for those the resident has not answered themselves by `callback_after`, and never
    // by whoever holds the incident: the office does not grade its own work.
    let staff = matches!(who.actor.role, Role::BuildingHead | Role::Supervisor);
    if staff && incident.status == Status::Resolved && incident.rating.is_none() {
        if incident.holder.as_ref().is_some_and(|h| h.id == who.actor.id) {
            return Err(LifecycleError::RoleNotAllowed {
                role: who.actor.role,
                what: "answer for the resident on an incident they hold",
            });
        }
        let due = incident.resolved_at.map(|at| at.plus(community.escalation.callback_after));
        if due.is_some_and(|due| now < due) {
            return Err(LifecycleError::TooEarlyForCallback);
        }
    }
    withdrawn(incident)?;
    match (incident.status, incident.rating) {
        (Status::Resolved, None) => Ok(Change::Rated { rating, solved: true, again: None }),
        (Status::Resolved, Some(_)) => Err(LifecycleError::AlreadyRated),
        _ => Err(LifecycleError::NotResolved),
    }
}

/// A note for the resident: whoever works on the incident's compound, the building heads too
/// (they are the residents' messengers), never on a cancelled one; as many as internal notes.
fn tell(incident: &Incident, who: &Principal, note: &str) -> Result<Change, LifecycleError> {
    let role = who.actor.role;
    if !matches!(role, Role::Worker | Role::Supervisor | Role::BuildingHead) {
        return Err(LifecycleError::RoleNotAllowed { role, what: "tell the resident" });
    }
    if !who.may_act_in(&incident.report.compound) {
        return Err(LifecycleError::OtherCompound(incident.report.compound.clone()));
    }
    withdrawn(incident)?;
    text(note, "note")?;
    let chars: usize = incident.notices.iter().map(|n| n.text.chars().count()).sum();
    if incident.notices.len() >= MAX_NOTES || chars + note.chars().count() > MAX_NOTES_CHARS {
        return Err(LifecycleError::TooManyNotes);
    }
    Ok(Change::Told { text: note.to_owned() })
}

/// Whether `key` is this incident's private code (compared in constant time).
pub fn holds_key(incident: &Incident, key: Option<&str>) -> bool {
    match (incident.key.as_deref(), key) {
        (Some(expected), Some(given)) if expected.len() == given.len() => {
            expected.bytes().zip(given.bytes()).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
        }
        _ => false,
    }
}

/// Whether `tail` is the last four digits of the phone number the resident gave.
pub fn phone_ends_with(incident: &Incident, tail: &str) -> bool {
    let digits: String = incident
        .report
        .phone
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    tail.len() == 4 && tail.chars().all(|c| c.is_ascii_digit()) && digits.ends_with(tail)
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Claim => "claim",
        Action::Note { .. } => "add a note",
        Action::HandOver { .. } => "hand over",
        Action::Return { .. } => "take back from the street office",
        Action::Resolve { .. } => "resolve",
        Action::Reopen { .. } => "reopen",
        Action::Cancel { .. } => "cancel",
        Action::Rate { .. } => "rate",
        Action::Assign { .. } => "assign",
        Action::Urge { .. } => "urge",
        Action::Reveal => "see the phone number",
        Action::Pause { .. } => "ask for a pause",
        Action::Tell { .. } => "tell the resident",
        Action::Mediate { .. } => "hand to a building head to mediate",
        Action::EndMediation { .. } => "end the mediation",
        Action::DecidePause { .. } => "decide on a pause",
        Action::Resume => "resume",
        Action::SendBack { .. } => "send a work order back",
        Action::RefuseSendBack { .. } => "keep a work order asked to be sent back",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::community::{Category, CategoryId, Target, Targets, Urgency};
    use crate::event::{Event, Timer};
    use crate::incident::{IncidentId, Ticket};
    use crate::time::Millis;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    /// A community of two compounds, `c1` and `c2`, and one category, `repair`.
    pub(crate) fn community() -> Community {
        let target =
            |m, h| Target { respond: Millis::from_mins(m), resolve: Millis::from_hours(h) };
        let repair = Category {
            targets: Targets { normal: target(60, 48), urgent: target(15, 6) },
            ..Category::sample("repair", false)
        };
        Community::sample(&["c1", "c2"], vec![repair])
    }

    fn principal(id: &str, role: Role, compounds: &[&str]) -> Principal {
        let scope = if role == Role::Supervisor {
            Scope::All
        } else {
            Scope::Compounds(compounds.iter().map(|c| CompoundId((*c).into())).collect())
        };
        Principal { actor: Actor { id: id.into(), name: format!("{id}名"), role }, scope }
    }

    fn kiosk() -> Principal {
        principal("kiosk-c1", Role::Kiosk, &["c1"])
    }
    fn worker_a() -> Principal {
        principal("a", Role::Worker, &["c1"])
    }
    fn worker_b() -> Principal {
        principal("b", Role::Worker, &["c1"])
    }
    fn supervisor() -> Principal {
        principal("boss", Role::Supervisor, &[])
    }

    fn report(compound: &str) -> Report {
        Report {
            compound: CompoundId(compound.into()),
            category: CategoryId("repair".into()),
            urgency: Urgency::Normal,
            building: "3号楼".into(),
            unit: "2单元".into(),
            room: "301".into(),
            description: "楼道灯坏了".into(),
            phone: Some("138 0000 1234".into()),
            attachments: Vec::new(),
            order: None,
        }
    }

    const KEY: &str = "0123456789";

    /// A little log: decides, then applies, as the committer does.
    struct Log {
        incident: Incident,
        seq: u64,
        now: Timestamp,
    }

    impl Log {
        fn new() -> Log {
            let deadlines =
                check_report(&kiosk(), &report("c1"), &community(), T0).expect("valid report");
            let event = Event {
                seq: 1,
                at: T0,
                incident: IncidentId(1),
                actor: kiosk().actor,
                change: Change::Reported {
                    ticket: Ticket::new(1),
                    report: Box::new(report("c1")),
                    request_id: "r1".into(),
                    respond_by: deadlines.respond_by,
                    resolve_by: deadlines.resolve_by,
                    escalate_by: Some(deadlines.escalate_by),
                    key: Some(KEY.into()),
                    recurring: Vec::new(),
                },
            };
            Log { incident: Incident::from_event(&event).expect("reported"), seq: 1, now: T0 }
        }

        fn try_do(&mut self, who: &Principal, action: Action) -> Result<Change, LifecycleError> {
            let change = decide(&self.incident, who, &action, self.now, &community())?;
            self.seq += 1;
            let event = Event {
                seq: self.seq,
                at: self.now,
                incident: self.incident.id,
                actor: who.actor.clone(),
                change: change.clone(),
            };
            self.incident.apply(&event).expect("a decided change applies");
            Ok(change)
        }

        fn ok(&mut self, who: &Principal, action: Action) -> &Incident {
            self.try_do(who, action).expect("allowed");
            &self.incident
        }

        fn refused(&mut self, who: &Principal, action: Action) -> LifecycleError {
            let before = self.incident.clone();
            let err = self.try_do(who, action).expect_err("must be refused");
            assert_eq!(self.incident, before, "a refusal changes nothing");
            err
        }
    }

    fn note(t: &str) -> Action {
        Action::Note { text: t.into() }
    }
    fn resolve() -> Action {
        Action::Resolve { outcome: "已更换灯泡".into(), proof: None }
    }

    /// A ticket number rates nothing: the kiosk and the status page need the slip's code.
    #[test]
    fn a_rating_needs_the_slips_code_except_from_a_building_head() {
        let rate = |key: Option<&str>| Action::Rate {
            rating: crate::incident::Rating::Satisfied,
            key: key.map(str::to_owned),
            solved: true,
        };
        let resolved = || {
            let mut log = Log::new();
            log.ok(&worker_a(), Action::Claim);
            log.ok(&worker_a(), resolve());
            log
        };
        for who in [kiosk(), Principal::resident()] {
            let mut log = resolved();
            assert_eq!(log.refused(&who, rate(None)), LifecycleError::WrongKey);
            assert_eq!(log.refused(&who, rate(Some("0123456780"))), LifecycleError::WrongKey);
            assert_eq!(log.refused(&who, rate(Some("0123"))), LifecycleError::WrongKey);
            log.ok(&who, rate(Some(KEY)));
        }
        let head = Principal {
            actor: Actor { id: "head".into(), name: "楼长".into(), role: Role::BuildingHead },
            scope: Scope::Compounds(vec![CompoundId("c1".into())]),
        };
        // 回访: only once the resident had their day to answer, and never by the holder.
        let mut log = resolved();
        assert_eq!(log.refused(&head, rate(None)), LifecycleError::TooEarlyForCallback);
        log.now = T0.plus(Millis::from_hours(24));
        let holder = principal("a", Role::Supervisor, &[]);
        assert_eq!(log.refused(&holder, rate(None)).code(), ErrorCode::Forbidden);
        log.ok(&head, rate(None));
    }

    /// 上级派单 come only from the platform whose key they name, and their deadline, while it
    /// lies ahead, is the one the office answers to.
    #[test]
    fn only_a_platform_gives_work_orders_and_their_deadline_is_the_offices() {
        let due = T0.plus(Millis::from_hours(2));
        let order = crate::WorkOrder {
            key: "key-1".into(),
            source: crate::Source::Hotline,
            external_id: "A-1".into(),
            due: Some(due),
        };
        let ordered = Report { order: Some(order.clone()), ..report("c1") };
        let c = community();
        for who in [kiosk(), principal("a", Role::Worker, &["c1"])] {
            let refused = check_report(&who, &ordered, &c, T0);
            assert!(matches!(refused, Err(LifecycleError::RoleNotAllowed { .. })), "{refused:?}");
        }
        let platform = |id: &str| Principal {
            actor: Actor { id: id.into(), name: "12345".into(), role: Role::Platform },
            scope: Scope::Compounds(vec![CompoundId("c1".into())]),
        };
        assert!(check_report(&platform("key-2"), &ordered, &c, T0).is_err(), "another key's");
        let deadlines = check_report(&platform("key-1"), &ordered, &c, T0).unwrap();
        assert_eq!(deadlines.resolve_by, due);
        assert!(deadlines.respond_by <= due && deadlines.escalate_by <= due);
        // Once it has passed (a second handling after it), the category's target again.
        let later = T0.plus(Millis::from_hours(3));
        let again = check_report(&platform("key-1"), &ordered, &c, later).unwrap();
        assert_eq!(again.resolve_by, later.plus(Millis::from_hours(48)));
    }

    #[test]
    fn a_kiosk_report_says_where_and_names_its_attachments() {
        let c = community();
        let nowhere = Report { building: " ".into(), ..report("c1") };
        assert_eq!(check_report(&kiosk(), &nowhere, &c, T0), Err(LifecycleError::NoPlace));
        let photo = |id: &str| crate::Attachment {
            id: id.into(),
            kind: crate::AttachmentKind::Photo,
            mime: "image/jpeg".into(),
            bytes: 10,
        };
        let good = "ab".repeat(32);
        let one = Report { attachments: vec![photo(&good)], ..report("c1") };
        assert!(check_report(&kiosk(), &one, &c, T0).is_ok());
        let two = Report { attachments: vec![photo(&good), photo(&good)], ..report("c1") };
        assert_eq!(check_report(&kiosk(), &two, &c, T0), Err(LifecycleError::BadAttachments));
        let traversal = Report { attachments: vec![photo("../../etc/passwd")], ..report("c1") };
        assert_eq!(check_report(&kiosk(), &traversal, &c, T0), Err(LifecycleError::BadAttachments));
    }

    #[test]
    fn a_phone_tail_is_exactly_the_last_four_digits() {
        let incident = Log::new().incident;
        assert!(phone_ends_with(&incident, "1234"));
        assert!(!phone_ends_with(&incident, "234"));
        assert!(!phone_ends_with(&incident, "0000"));
        assert!(!phone_ends_with(&incident, "12 34"));
    }

    #[test]
    fn a_report_gets_deadlines_from_its_category_and_urgency() {
        let d = check_report(&kiosk(), &report("c1"), &community(), T0).unwrap();
        assert_eq!(
            (d.respond_by, d.resolve_by, d.escalate_by),
            (
                T0.plus(Millis::from_mins(60)),
                T0.plus(Millis::from_hours(48)),
                T0.plus(Millis::from_mins(30))
            )
        );
        let urgent = Report { urgency: Urgency::Urgent, ..report("c1") };
        let d = check_report(&kiosk(), &urgent, &community(), T0).unwrap();
        assert_eq!(d.respond_by, T0.plus(Millis::from_mins(15)));
        assert_eq!(d.escalate_by, d.respond_by, "escalated at the latest when the target passes");
        assert_eq!(Log::new().incident.status, Status::Reported);
        assert_eq!(Log::new().incident.ticket, Ticket("0001".into()));
    }

    #[test]
    fn a_bad_report_is_refused_with_its_reason() {
        let c = community();
        let check = |who: &Principal, r: &Report| check_report(who, r, &c, T0).unwrap_err();
        assert_eq!(
            check(&kiosk(), &report("c2")),
            LifecycleError::OtherCompound(CompoundId("c2".into()))
        );
        assert_eq!(
            check(&kiosk(), &report("c9")),
            LifecycleError::UnknownCompound(CompoundId("c9".into()))
        );
        let r = Report { category: CategoryId("moon".into()), ..report("c1") };
        assert_eq!(check(&kiosk(), &r), LifecycleError::UnknownCategory("moon".into()));
        let r = Report { description: "  ".into(), ..report("c1") };
        assert_eq!(check(&kiosk(), &r), LifecycleError::Empty { field: "description" });
        let r = Report { description: "长".repeat(MAX_TEXT_CHARS + 1), ..report("c1") };
        assert_eq!(check(&kiosk(), &r), LifecycleError::TooLong { field: "description", max: 500 });
        let r = Report { room: "9".repeat(21), ..report("c1") };
        assert_eq!(check(&kiosk(), &r), LifecycleError::TooLong { field: "room", max: 20 });
        for phone in ["12", "call me", "+86 138-0000-1234-5678-9999"] {
            let r = Report { phone: Some(phone.into()), ..report("c1") };
            assert_eq!(check(&kiosk(), &r), LifecycleError::BadPhone, "{phone}");
        }
        let r = Report { phone: Some("+86 138-0000-1234".into()), ..report("c1") };
        assert!(check_report(&kiosk(), &r, &c, T0).is_ok());
        // A supervisor may report for any compound, a building head only for their own.
        assert!(check_report(&supervisor(), &report("c2"), &c, T0).is_ok());
        let head = principal("head", Role::BuildingHead, &["c1"]);
        assert!(check_report(&head, &report("c1"), &c, T0).is_ok());
        assert_eq!(check(&head, &report("c2")).code(), ErrorCode::OtherCompound);
    }

    #[test]
    fn claim_note_hand_over_return_resolve_reopen() {
        let mut log = Log::new();
        let i = log.ok(&worker_a(), Action::Claim);
        assert_eq!(
            (i.status, i.holder.as_ref().map(|h| h.id.as_str())),
            (Status::Claimed, Some("a"))
        );
        assert_eq!(i.claimed_at, Some(T0));
        // Any worker of the compound may add a note.
        assert_eq!(log.ok(&worker_b(), note("我也看到了")).notes.len(), 1);
        let i = log.ok(&worker_a(), Action::HandOver { note: "报街道维修".into() });
        assert_eq!(i.status, Status::HandedOver);
        let i = log.ok(&worker_a(), Action::Return { note: "街道已派人".into() });
        assert_eq!(i.status, Status::Claimed);
        log.now = T0.plus(Millis::from_hours(2));
        let i = log.ok(&worker_a(), resolve());
        assert_eq!(i.status, Status::Resolved);
        assert_eq!(i.resolved_at, Some(T0.plus(Millis::from_hours(2))));
        assert_eq!(i.outcome.as_deref(), Some("已更换灯泡"));
        log.now = T0.plus(Millis::from_hours(3));
        let i = log.ok(&supervisor(), Action::Reopen { reason: "居民说还不亮".into() });
        assert_eq!(i.status, Status::Claimed, "reopened, back with its holder");
        assert_eq!(i.resolve_by, T0.plus(Millis::from_hours(51)), "resolution timer restarts");
        assert_eq!(i.outcome, None);
        assert_eq!(log.incident.last_seq, 7);
    }

    #[test]
    fn resolving_while_with_the_street_office_is_allowed() {
        let mut log = Log::new();
        log.ok(&worker_a(), Action::Claim);
        log.ok(&worker_a(), Action::HandOver { note: "代办低保".into() });
        assert_eq!(log.ok(&worker_a(), resolve()).status, Status::Resolved);
    }

    #[test]
    fn cancel_needs_a_reason_and_ends_everything() {
        let mut log = Log::new();
        let err = log.refused(&worker_a(), Action::Cancel { reason: " ".into() });
        assert_eq!(err, LifecycleError::Empty { field: "reason" });
        let i = log.ok(&worker_a(), Action::Cancel { reason: "重复上报".into() });
        assert_eq!((i.status, i.cancel_reason.as_deref()), (Status::Cancelled, Some("重复上报")));
        for action in [Action::Claim, note("x"), resolve(), Action::Reopen { reason: "x".into() }] {
            assert_eq!(log.refused(&supervisor(), action), LifecycleError::Cancelled);
        }
    }

    /// 退单: the holder asks with a reason for the supervisor, who keeps it (the holder may ask
    /// again) or sends it back, which closes it; only a work order is sent back.
    #[test]
    fn a_work_order_is_sent_back_at_the_holders_asking_by_a_supervisor() {
        let send_back = |r: &str| Action::SendBack { reason: r.into() };
        let mut log = Log::new();
        log.ok(&worker_a(), Action::Claim);
        assert_eq!(log.refused(&worker_a(), send_back("不归我们管")), LifecycleError::NotAnOrder);
        log.incident.report.order = Some(crate::WorkOrder {
            key: "key-1".into(),
            source: crate::Source::StreetOffice,
            external_id: "JD-7".into(),
            due: None,
        });
        assert_eq!(
            log.refused(&worker_b(), send_back("不归我们管")),
            LifecycleError::NotHolder { holder: worker_a().actor }
        );
        let refuse = |r: &str| Action::RefuseSendBack { reason: r.into() };
        assert_eq!(log.refused(&supervisor(), refuse("请先核实")), LifecycleError::NoSendBack);
        let i = log.ok(&worker_a(), send_back("地址在辖区外"));
        assert_eq!(i.send_back.as_ref().map(|s| s.reason.as_str()), Some("地址在辖区外"));
        assert_eq!(i.status, Status::Claimed, "the holder keeps it while a supervisor decides");
        assert_eq!(log.refused(&worker_a(), send_back("再说一次")), LifecycleError::SendBackAsked);
        assert!(matches!(
            log.refused(&worker_a(), refuse("不行")),
            LifecycleError::RoleNotAllowed { .. }
        ));
        assert!(log.ok(&supervisor(), refuse("请先上门核实")).send_back.is_none());
        // Asked, then given to another worker: the asking goes with the holding.
        log.ok(&worker_a(), send_back("不归我们"));
        let to_b = Action::Assign { to: worker_b() };
        assert!(log.ok(&supervisor(), to_b).send_back.is_none());
        log.ok(&supervisor(), Action::Assign { to: worker_a() });
        log.ok(&worker_a(), send_back("已核实，不在辖区"));
        let change = log.try_do(&supervisor(), send_back("该地址属于邻近社区")).unwrap();
        assert_eq!(change, Change::SentBack { reason: "该地址属于邻近社区".into() });
        assert_eq!(
            (log.incident.status, log.incident.send_back.as_ref()),
            (Status::SentBack, None)
        );
        assert!(!log.incident.status.is_open() && log.incident.status.is_withdrawn());
        for action in [resolve(), note("x"), send_back("x"), Action::Cancel { reason: "x".into() }]
        {
            assert_eq!(log.refused(&supervisor(), action), LifecycleError::SentBack);
        }
        assert!(log.incident.due(T0.plus(Millis::from_hours(1000))).is_empty(), "no clock runs");
    }

    #[test]
    fn illegal_transitions_are_refused() {
        let mut log = Log::new();
        assert_eq!(log.refused(&worker_a(), resolve()), LifecycleError::NotClaimed);
        assert_eq!(
            log.refused(&worker_a(), Action::HandOver { note: "x".into() }),
            LifecycleError::NotClaimed
        );
        assert_eq!(
            log.refused(&worker_a(), Action::Return { note: "x".into() }),
            LifecycleError::NotHandedOver
        );
        assert_eq!(
            log.refused(&worker_a(), Action::Reopen { reason: "x".into() }),
            LifecycleError::NotResolved
        );

        log.ok(&worker_a(), Action::Claim);
        let holder = log.incident.holder.clone().unwrap();
        assert_eq!(
            log.refused(&worker_a(), Action::Claim),
            LifecycleError::AlreadyClaimed { holder: holder.clone() }
        );
        let err = log.refused(&worker_b(), Action::Claim);
        assert_eq!(err.to_string(), "already claimed by a名");
        assert_eq!(
            log.refused(&worker_b(), resolve()),
            LifecycleError::NotHolder { holder: holder.clone() }
        );
        assert_eq!(
            log.refused(&worker_b(), Action::Cancel { reason: "x".into() }).code(),
            ErrorCode::NotHolder
        );

        log.ok(&worker_a(), Action::HandOver { note: "x".into() });
        assert_eq!(
            log.refused(&worker_a(), Action::HandOver { note: "y".into() }),
            LifecycleError::AlreadyHandedOver
        );
        assert_eq!(
            log.refused(&worker_b(), Action::Return { note: "y".into() }).code(),
            ErrorCode::NotHolder
        );

        log.ok(&worker_a(), resolve());
        assert_eq!(log.refused(&worker_a(), resolve()), LifecycleError::AlreadyResolved);
        assert_eq!(log.refused(&worker_a(), Action::Claim), LifecycleError::AlreadyResolved);
        assert_eq!(
            log.refused(&worker_a(), Action::Cancel { reason: "x".into() }),
            LifecycleError::AlreadyResolved
        );
        assert_eq!(
            log.refused(&worker_a(), Action::HandOver { note: "x".into() }),
            LifecycleError::AlreadyResolved
        );
    }

    #[test]
    fn roles_and_compounds_are_enforced() {
        let mut log = Log::new();
        let other = principal("c", Role::Worker, &["c2"]);
        assert_eq!(
            log.refused(&other, Action::Claim),
            LifecycleError::OtherCompound(CompoundId("c1".into()))
        );
        for who in [kiosk(), principal("head", Role::BuildingHead, &["c1"])] {
            for action in [Action::Claim, note("x"), resolve()] {
                assert_eq!(log.refused(&who, action).code(), ErrorCode::Forbidden);
            }
        }
        // A supervisor may step in for the holder.
        log.ok(&worker_a(), Action::Claim);
        assert_eq!(log.ok(&supervisor(), resolve()).status, Status::Resolved);
    }

    #[test]
    fn breaches_and_the_unclaimed_escalation_fall_due_once_each() {
        let mut log = Log::new();
        let i = &log.incident;
        assert_eq!(i.next_due(), Some(T0.plus(Millis::from_mins(30))));
        assert!(i.due(T0.plus(Millis::from_mins(29))).is_empty());
        let late = T0.plus(Millis::from_hours(49));
        let due = i.due(late);
        assert_eq!(
            due,
            vec![
                Change::Escalated { reason: crate::event::EscalationReason::Unclaimed },
                Change::Breached {
                    timer: Timer::Response,
                    deadline: T0.plus(Millis::from_mins(60))
                },
                Change::Breached {
                    timer: Timer::Resolution,
                    deadline: T0.plus(Millis::from_hours(48))
                },
            ]
        );
        for (n, change) in due.into_iter().enumerate() {
            let seq = 2 + n as u64;
            let event =
                Event { seq, at: late, incident: IncidentId(1), actor: Actor::system(), change };
            log.incident.apply(&event).unwrap();
        }
        assert!(log.incident.due(late).is_empty());
        assert_eq!(log.incident.next_due(), None);
        // Claiming stops the response timer; a claimed incident breaches only on resolution.
        let mut log = Log::new();
        log.ok(&worker_a(), Action::Claim);
        let due = log.incident.due(late);
        assert!(matches!(due.as_slice(), [Change::Breached { timer: Timer::Resolution, .. }]));
    }

    #[test]
    fn an_event_out_of_order_is_refused_by_apply() {
        let mut log = Log::new();
        let claim = Event {
            seq: 1,
            at: T0,
            incident: IncidentId(1),
            actor: worker_a().actor,
            change: Change::Claimed,
        };
        assert!(log.incident.apply(&claim).is_err(), "seq not after the last");
        let resolve = Event {
            seq: 5,
            change: Change::Resolved { outcome: "x".into(), proof: None },
            ..claim
        };
        assert!(log.incident.apply(&resolve).is_err(), "resolve before claim");
    }

    #[test]
    fn tickets_read_back_as_typed() {
        assert_eq!(Ticket::new(42).0, "0042");
        assert_eq!(Ticket::new(123456).0, "123456");
        assert_eq!(Ticket::new(42).number(), Some(42));
        assert_eq!(Ticket::parse(" 00 42 "), Some(42));
        assert_eq!(Ticket::parse("42a"), None);
        assert_eq!(Ticket::parse("0000"), None);
    }
}
