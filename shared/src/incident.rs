//! An incident's current state, derived by folding its events in order.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::community::{CategoryId, CompoundId, Urgency};
use crate::ids::{Actor, Seq};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct IncidentId(pub u64);

/// The number a resident keeps and can read aloud: the incident's number within its
/// community (1, 2, 3… in the order reported there), at least four digits. In a deployment
/// serving one community it is the incident id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String))]
#[serde(transparent)]
pub struct Ticket(pub CompactString);

impl Ticket {
    pub fn new(number: u64) -> Ticket {
        Ticket(compact_str::format_compact!("{number:04}"))
    }

    /// The ticket's number.
    pub fn number(&self) -> Option<u64> {
        Ticket::parse(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number a ticket names; accepts what a person might type (spaces, fewer zeros).
    pub fn parse(text: &str) -> Option<u64> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.is_empty() || digits.len() > 12 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|&n| n > 0)
    }
}

/// What a resident (or someone on their behalf) reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub compound: CompoundId,
    pub category: CategoryId,
    pub urgency: Urgency,
    /// 楼 / 单元 / 室 as the resident gives them; any may be empty (a problem in a courtyard).
    pub building: String,
    pub unit: String,
    pub room: String,
    pub description: String,
    /// Personal data: never logged, masked on shared screens.
    pub phone: Option<String>,
    /// A voice note and a photo, uploaded first (`POST /api/attachments`), named by content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// 上级派单: a work order from the street office's or the 12345 platform's system, posted
    /// through Open311 with its key; absent for every other report (and refused from any other
    /// reporter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<WorkOrder>,
}

/// Where a work order from above comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The city's 12345 hotline (接诉即办).
    Hotline,
    /// The street office (街道).
    StreetOffice,
}

/// 上级派单: an order the office answers upstream: each change of it is delivered to its key's
/// webhook, naming `external_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkOrder {
    /// The API key it came with (`key-N`).
    pub key: String,
    pub source: Source,
    /// The platform's own number for it (1 to 64 characters).
    pub external_id: String,
    /// The platform's deadline: it replaces the category's resolution target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Timestamp>,
}

/// A file attached to a report: stored once by the server, named by the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// The SHA-256 of the stored bytes, as 64 lower-case hex digits.
    pub id: String,
    pub kind: AttachmentKind,
    /// The stored file's MIME type, for example `image/jpeg` or `audio/webm`.
    pub mime: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// A photo from the kiosk's camera, JPEG, metadata (location, device) removed.
    Photo,
    /// A voice note of up to 60 seconds.
    Voice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 已上报: waiting for a worker.
    Reported,
    /// 已接单: a worker holds it.
    Claimed,
    /// 代办中: with the street office.
    HandedOver,
    /// 已办结.
    Resolved,
    /// 已撤销.
    Cancelled,
    /// 已退单: a work order from above (上级派单) returned to the platform that sent it.
    SentBack,
}

impl Status {
    /// Open incidents are on the board and have running timers.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Reported | Status::Claimed | Status::HandedOver)
    }

    /// Closed without the office handling it: cancelled (a duplicate or a mistake) or a work
    /// order sent back. The audit counts such an incident as that, and nothing else.
    pub fn is_withdrawn(self) -> bool {
        matches!(self, Status::Cancelled | Status::SentBack)
    }
}

/// Where a report came from, as the audit counts it: the reporter's role, or the platform of a
/// work order from above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A station's kiosk (驿站).
    Kiosk,
    /// A building head's 代报.
    BuildingHead,
    /// A worker or supervisor on the board.
    Office,
    /// Another system through Open311 with a plain key (an app).
    Open311,
    /// 12345 接诉即办.
    Hotline,
    /// The street office's system (街道).
    StreetOffice,
}

impl Origin {
    pub const ALL: [Origin; 6] = [
        Origin::Kiosk,
        Origin::BuildingHead,
        Origin::Office,
        Origin::Open311,
        Origin::Hotline,
        Origin::StreetOffice,
    ];

    /// The one rule: a work order counts as its platform's, anything else by who reported it.
    pub fn of(incident: &Incident) -> Origin {
        match (&incident.report.order, incident.reported_by.role) {
            (Some(order), _) => match order.source {
                Source::Hotline => Origin::Hotline,
                Source::StreetOffice => Origin::StreetOffice,
            },
            (None, crate::ids::Role::Kiosk) => Origin::Kiosk,
            (None, crate::ids::Role::BuildingHead) => Origin::BuildingHead,
            (None, crate::ids::Role::Platform) => Origin::Open311,
            (None, _) => Origin::Office,
        }
    }

    /// How the office's exports name it.
    pub fn label_zh(self) -> &'static str {
        match self {
            Origin::Kiosk => "驿站",
            Origin::BuildingHead => "楼长代报",
            Origin::Office => "网格办",
            Origin::Open311 => "Open311",
            Origin::Hotline => "12345",
            Origin::StreetOffice => "街道",
        }
    }

    /// Its name on the wire, as serde writes it.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Kiosk => "kiosk",
            Origin::BuildingHead => "building_head",
            Origin::Office => "office",
            Origin::Open311 => "open311",
            Origin::Hotline => "hotline",
            Origin::StreetOffice => "street_office",
        }
    }
}

/// 退单: the holder of a work order from above asks a supervisor to send it back to its
/// platform, with a reason for the supervisor (not for the platform).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendBack {
    pub reason: String,
    pub asked_by: Actor,
    pub asked_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Note {
    pub at: Timestamp,
    pub by: Actor,
    pub text: String,
}

/// Where a resident's answer came from: 满意率 is shown per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// At the kiosk that took the report.
    Kiosk,
    /// On the private status page the slip opens.
    StatusPage,
    /// 回访: a supervisor or building head called or visited and recorded the answer.
    Callback,
}

impl AnswerSource {
    pub const ALL: [AnswerSource; 3] =
        [AnswerSource::Kiosk, AnswerSource::StatusPage, AnswerSource::Callback];

    /// The one rule: the answering actor's role says where the answer came from.
    pub fn of(role: crate::ids::Role) -> AnswerSource {
        match role {
            crate::ids::Role::Kiosk => AnswerSource::Kiosk,
            crate::ids::Role::Resident => AnswerSource::StatusPage,
            _ => AnswerSource::Callback,
        }
    }
}

/// 挂起: a pause of an incident's resolution clock, as asked and decided. Only an approved pause
/// stops the clock: from the approval until the holder resumes, the incident is resolved, or
/// `until` passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pause {
    /// One of the community's configured reasons.
    pub reason: String,
    pub asked_by: Actor,
    pub asked_at: Timestamp,
    /// The supervisor who approved or refused it; absent while it waits.
    pub decided_by: Option<Actor>,
    pub approved: bool,
    /// When the clock stopped (the approval), and when it ran again.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// When an approved pause ends by itself.
    pub until: Option<Timestamp>,
}

impl Pause {
    /// Approved and not over: the resolution clock is stopped.
    pub fn active(&self) -> bool {
        self.approved && self.to.is_none()
    }
}

/// 调解: a building head mediating a dispute for the holder, with their own clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mediation {
    pub head: Actor,
    pub since: Timestamp,
    pub due: Timestamp,
    /// When it ended, and what came of it; absent while it runs.
    pub ended: Option<Timestamp>,
    pub outcome: Option<String>,
    pub settled: bool,
    /// `due` passed while it ran.
    pub breached: bool,
}

impl Mediation {
    pub fn running(&self) -> bool {
        self.ended.is_none()
    }
}

/// The resident's answer to 解决了吗？满意吗？ after one handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Answer {
    pub at: Timestamp,
    /// Who recorded it: the kiosk, the resident, or the one who called (回访).
    pub by: Actor,
    pub source: AnswerSource,
    pub solved: bool,
    pub rating: Rating,
    /// Which handling it answers: 0 the first, 1 the second (二次办理), …
    pub round: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    pub id: IncidentId,
    pub ticket: Ticket,
    pub report: Report,
    pub request_id: String,
    pub reported_by: Actor,
    pub reported_at: Timestamp,
    pub status: Status,
    /// The worker who claimed it; kept after resolution so reopening returns it to them.
    pub holder: Option<Actor>,
    pub claimed_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub outcome: Option<String>,
    pub cancel_reason: Option<String>,
    pub respond_by: Timestamp,
    pub resolve_by: Timestamp,
    pub response_breached: bool,
    pub resolution_breached: bool,
    /// Reported while nobody of its compound was on duty.
    pub escalated: bool,
    /// When it is escalated to the supervisors if still unclaimed; absent for incidents reported
    /// before the escalation policy existed.
    #[serde(default)]
    pub escalate_by: Option<Timestamp>,
    /// Escalated because it stayed unclaimed.
    #[serde(default)]
    pub escalated_unclaimed: bool,
    /// The resident's satisfaction with the current handling, once answered.
    #[serde(default)]
    pub rating: Option<Rating>,
    /// Which handling this is: 0 the first, 1 after the resident said "not solved" once
    /// (二次办理), and so on. Each has its own response and resolution clocks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
    /// Every answer the resident gave, one per finished handling, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
    /// The first handling's response target, kept when a second handling sets new clocks: the
    /// first response (`claimed_at`) is judged against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_respond_by: Option<Timestamp>,
    /// Breaches of earlier handlings (the flags above are the current handling's).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub earlier_breaches: u32,
    /// 挂起 asked and waiting for a supervisor, or approved and running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    /// Pauses over (ended, refused, or left undecided at resolution), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Pause>,
    /// Time the resolution clock stood still (ms): not counted against the target.
    #[serde(default, skip_serializing_if = "is_zero64")]
    pub paused_ms: u64,
    /// 调解: the latest mediation by a building head, running or over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediation: Option<Mediation>,
    /// Notes for the resident (`tell`), oldest first: on the status page and at the kiosk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Note>,
    /// 每月一题: the earlier reports that make this one a recurring problem (same compound,
    /// building and category within the community's `recurring.within`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recurring: Vec<IncidentId>,
    /// The private code on the resident's slip and in their status link: with the ticket it
    /// opens the status page and lets them rate. Never in any view (`view` clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The photo of the result the resolving worker took (影像证明).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Attachment>,
    /// How often a supervisor urged it (督办).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub urges: u32,
    /// 退单 asked by the holder and waiting for a supervisor (a work order only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_back: Option<SendBack>,
    pub notes: Vec<Note>,
    /// The sequence number of its last event. Its timeline (every event of it) is kept in the
    /// store's index, not here, so that the state stays small however long its history.
    pub last_seq: Seq,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero64(n: &u64) -> bool {
    *n == 0
}

/// A resident's satisfaction with how a resolved incident was handled (满意率).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// 满意
    Satisfied,
    /// 基本满意
    BasicallySatisfied,
    /// 不满意
    Dissatisfied,
}

/// The moments a handling's timers run out, fixed when it starts (the report, or the resident's
/// "not solved").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deadlines {
    pub respond_by: Timestamp,
    pub resolve_by: Timestamp,
    /// Escalated to the supervisors if still unclaimed then.
    pub escalate_by: Timestamp,
}
