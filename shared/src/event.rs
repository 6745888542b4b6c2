//! Events: the append-only log every incident's state is derived from, and the audit trail.

use serde::{Deserialize, Serialize};

use crate::incident::{IncidentId, Report, Ticket};
use crate::time::Timestamp;

/// Position of an event in the log: gap-free and increasing, starting at 1.
pub type Seq = u64;

/// One change to one incident, as stored and as pushed to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub seq: Seq,
    pub at: Timestamp,
    pub incident: IncidentId,
    pub actor: Actor,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Supervisor,
    Worker,
    BuildingHead,
    /// A station's kiosk: a device, not a person.
    Kiosk,
    /// The server itself, for example when a deadline passes.
    System,
    /// The resident, on the private status page their slip's code opens.
    Resident,
}

/// Who made a change, as the log remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub role: Role,
}

impl Actor {
    pub fn system() -> Actor {
        Actor { id: "system".into(), name: "系统".into(), role: Role::System }
    }
}

/// Which first-time promise a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Timer {
    /// Time to first response: report to claim.
    Response,
    /// Time to resolution.
    Resolution,
    /// A building head's time to mediate (调解).
    Mediation,
}

/// Why a report was shown beyond the on-duty workers of its compound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// Nobody of its compound was on duty when it was reported: the supervisors and the other
    /// compounds' on-duty workers are told at once. The default, because logs written before
    /// reasons existed escalated only for this.
    #[default]
    NobodyOnDuty,
    /// Still unclaimed when the escalation policy's time ran out: the supervisors are told.
    Unclaimed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// 上报. Carries the deadlines so they are as durable as the report itself.
    Reported {
        ticket: Ticket,
        report: Box<Report>,
        /// The reporting device's own id for this report; the same id again is the same report.
        request_id: String,
        respond_by: Timestamp,
        resolve_by: Timestamp,
        /// When it is escalated if still unclaimed (absent in logs from before the policy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        escalate_by: Option<Timestamp>,
        /// The resident's private code (see `Incident::key`); absent in logs from before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// 每月一题: the earlier reports of the same category at the same building that make
        /// this one recurring (`community.recurring`), oldest first, at most the latest ten;
        /// empty when it is not.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recurring: Vec<IncidentId>,
    },
    /// 接单.
    Claimed,
    /// 派单 / 改派: a supervisor gives the incident to a worker (who holds it from then on).
    Assigned {
        to: Actor,
    },
    /// 督办: a supervisor's logged nudge to whoever holds (or should take) the incident.
    Urged {
        note: String,
    },
    Noted {
        text: String,
    },
    /// A note for the resident (not the workers' internal notes): shown on their status page
    /// and at the kiosk, for example a building head's 已联系物业，明天上午来修.
    Told {
        text: String,
    },
    /// 代办: taken to the street office on the resident's behalf.
    HandedOver {
        note: String,
    },
    /// Back from the street office to the holder.
    Returned {
        note: String,
    },
    /// 办结, with a photo of the result when one was taken (影像证明).
    Resolved {
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<crate::incident::Attachment>,
    },
    /// 调解: handed to a building head to mediate, who has until `due`; the holder keeps it.
    MediationStarted {
        head: Actor,
        due: Timestamp,
    },
    /// The mediation is over: by the building head (settled or not, with what came of it), or
    /// taken back by the holder or a supervisor.
    MediationEnded {
        outcome: String,
        settled: bool,
    },
    /// 挂起 asked for, with one of the community's reasons: nothing stops until a supervisor
    /// approves.
    PauseAsked {
        reason: String,
    },
    /// A supervisor's decision on the pause asked for; an approved one stops the resolution
    /// clock until `until` at the latest.
    PauseDecided {
        approved: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
    /// The resolution clock runs again: the holder or a supervisor resumed, or the pause's limit
    /// passed (logged by the system, ending at the limit).
    Resumed,
    /// Opened again after resolution; the resolution timer starts again.
    Reopened {
        reason: String,
        resolve_by: Timestamp,
    },
    /// A duplicate or mistaken report, with the reason.
    Cancelled {
        reason: String,
    },
    /// The resident's answer after 办结 — 解决了吗？满意吗？ — once per handling: from the
    /// status page, the reporting kiosk, or a 回访 (the actor is who called). Not solved starts a
    /// second handling (二次办理): the incident is open and unclaimed again, with the new
    /// clocks in `again`.
    Rated {
        rating: crate::audit::Rating,
        /// Absent in logs from before the question was asked: those ratings meant solved.
        #[serde(default = "yes")]
        solved: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        again: Option<crate::lifecycle::Deadlines>,
    },
    /// Shown beyond the on-duty workers of its compound, for `reason`. Each reason is logged at
    /// most once per incident, in the same group as the report (nobody on duty) or when the
    /// escalation time passes (unclaimed).
    Escalated {
        #[serde(default)]
        reason: EscalationReason,
    },
    /// The resident's phone number was shown to the actor (a worker or supervisor who asked for
    /// it on the board): personal data is seen on a need-to-know basis, and each look is on
    /// the record, for the supervisors.
    Revealed,
    /// A first-time target passed. `deadline` is when it passed, which is earlier than the
    /// event's own time when the server was down at that moment.
    Breached {
        timer: Timer,
        deadline: Timestamp,
    },
}

fn yes() -> bool {
    true
}

impl Change {
    /// The stable name of this change, as in `type` on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Change::Reported { .. } => "reported",
            Change::Claimed => "claimed",
            Change::Noted { .. } => "noted",
            Change::Told { .. } => "told",
            Change::Assigned { .. } => "assigned",
            Change::Urged { .. } => "urged",
            Change::HandedOver { .. } => "handed_over",
            Change::Returned { .. } => "returned",
            Change::Resolved { .. } => "resolved",
            Change::Reopened { .. } => "reopened",
            Change::MediationStarted { .. } => "mediation_started",
            Change::MediationEnded { .. } => "mediation_ended",
            Change::PauseAsked { .. } => "pause_asked",
            Change::PauseDecided { .. } => "pause_decided",
            Change::Resumed => "resumed",
            Change::Cancelled { .. } => "cancelled",
            Change::Rated { .. } => "rated",
            Change::Escalated { .. } => "escalated",
            Change::Revealed => "revealed",
            Change::Breached { .. } => "breached",
        }
    }
}
